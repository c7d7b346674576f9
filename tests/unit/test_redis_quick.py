"""Redis: the quick enqueue (one RPUSH of the whole job) and the inbox's writing out.

A fresh plain job is pushed without a script and written out and indexed by the
next claim or script, in bulk; every reader sees it as waiting before that, and
rowids keep the order of enqueueing. Only the push into an empty inbox wakes the
workers, and an idle one wakes at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from runner.errors import DuplicateJob
from runner.store.job_rows import QueueBound
from runner.store.redis import RedisStore
from runner.store.redis.quick import push_request, wake_request
from runner.store.rows import JobFilter
from tests.conformance.helpers import OWNER, T0, job
from tests.redis_support import fresh_store


@pytest.fixture
def store() -> Iterator[RedisStore]:
    with fresh_store() as opened:
        yield opened


def inbox(store: RedisStore) -> int:
    return int(store.r.llen(store.k("inbox")))


def claim(store: RedisStore, want: int = 10, now: float = T0) -> list[str]:
    return [c.id for c in store.claim(now=now, owner=OWNER, lease_seconds=30,
                                      want=want).claimed]


def test_the_request_is_one_rpush_of_the_whole_job():
    new = job(T0, queue="mail", priority=3, concurrency_key="k\x1fx")
    packed = push_request(b"pre:", new, T0 + 1)
    entry = b"3\x1f%s\x1f%s\x1f1\x1ftests.jobs.add\x1f%s\x1fmail\x1f2\x1f3\x1f()k\x1fxpayload" % (
        repr(T0).encode(), repr(T0 + 1).encode(), new.id.encode())
    conn = redis.Redis().connection_pool.make_connection()
    assert packed == b"".join(conn.pack_commands([("RPUSH", "pre:inbox", entry)]))
    assert wake_request(b"pre:") == b"".join(conn.pack_commands([("PUBLISH", "pre:wake", "1")]))


def test_a_quick_job_reads_back_as_the_script_writes_it(store):
    """Every field, NULLs, separators and any bytes in args, key and payload included."""
    odd = b"\x1f\x00\r\n\xff" * 3
    pairs = []
    for args, key in ((None, None), ("(\x1f'a',)", None), (None, "k\x1f\x1f"), ("", "")):
        made = [replace(job(T0 - 5, queue="mail", priority=-7, max_attempts=4,
                            concurrency_key=key), args=args, data=odd) for _ in range(2)]
        made[1].fresh = False  # the scripted enqueue, which writes the inbox first
        store.enqueue([made[0]], now=T0)
        assert inbox(store) == 1
        store.enqueue([made[1]], now=T0)
        pairs.append([m.id for m in made])
    store._settle()  # as a reader does first
    for quick_id, scripted_id in pairs:
        fields = [store.r.hgetall(store.k("job", i)) for i in (quick_id, scripted_id)]
        rowids = [int(f.pop(b"rowid")) for f in fields]
        assert rowids[0] < rowids[1]  # enqueued first, so numbered first
        assert [f.pop(b"id") for f in fields] == [quick_id.encode(), scripted_id.encode()]
        created = [float(f.pop(b"created_at")) for f in fields]  # the script's number: %.17g
        assert created == [T0, T0]
        assert fields[0] == fields[1]
        assert store.r.get(store.k("data", quick_id)) == odd
    claimed = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=8).claimed
    assert {c.id for c in claimed} == {i for p in pairs for i in p}
    assert {c.data for c in claimed} == {odd}


def test_a_fresh_plain_job_waits_in_the_inbox_and_every_reader_sees_it(store):
    new = job(T0)
    store.enqueue([new], now=T0)
    assert inbox(store) == 1
    assert store.get_job(new.id).state == "available"
    assert store.count_in_state("available") == 1
    assert store.waiting_in_queue("default") == 1
    assert [r.id for r in store.list_jobs(JobFilter(state="waiting"))] == [new.id]
    assert inbox(store) == 0  # the listing indexed it
    assert claim(store) == [new.id]


def test_a_claim_indexes_the_inbox_in_order_of_priority_then_age(store):
    low, high, later = job(T0 - 2), job(T0 - 1, priority=5), job(T0)
    for new in (low, high, later):
        store.enqueue([new], now=T0)
    assert inbox(store) == 3
    assert claim(store, want=3) == [high.id, low.id, later.id]
    totals = {t.task: t.enqueued for t in store.read_totals()}
    assert totals == {"tests.jobs.add": 3}


def test_what_needs_checking_takes_the_script_and_keeps_rowids_in_order(store):
    first, second = job(T0), job(T0)
    store.enqueue([first], now=T0)  # quick
    store.enqueue([second], now=T0, queue_size=10)  # bounded: the script, after the inbox
    later = job(T0 + 60)
    store.enqueue([later], now=T0)  # not due: the script
    assert inbox(store) == 0
    # The dashboard's pages list the jobs of one instant by rowid, newest first
    ids = [r.id for r in store.keyset_page(None, limit=10).jobs]
    assert ids == [later.id, second.id, first.id]


def test_an_id_written_before_is_refused_even_when_marked_fresh(store):
    new = job(T0)
    store.enqueue([new], now=T0)
    again = job(T0, job_id=new.id)
    with pytest.raises(DuplicateJob):
        store.enqueue([again], now=T0)
    assert claim(store) == [new.id]


def test_a_bound_counts_the_jobs_of_the_inbox(store):
    store.enqueue([job(T0)], now=T0)
    store.enqueue([job(T0)], now=T0)
    assert inbox(store) == 2
    bound = {"default": QueueBound(2, "reject")}
    with pytest.raises(Exception, match="is full"):
        store.enqueue([job(T0)], now=T0, queue_size=2, bounds=bound)


def test_cancelling_a_job_still_in_the_inbox_indexes_it_first(store):
    new, other = job(T0), job(T0)
    store.enqueue([new], now=T0)
    store.enqueue([other], now=T0)
    assert store.by_hand("cancel", [new.id], ("available",), now=T0)
    assert store.get_job(new.id).state == "cancelled"
    assert claim(store) == [other.id]


def test_a_claim_indexes_a_bounded_part_of_a_large_inbox(store):
    from runner.store.redis.lua_jobs import ABSORB

    jobs = [job(T0) for _ in range(ABSORB + 10)]
    for new in jobs:
        store.enqueue([new], now=T0)
    assert claim(store, want=1) == [jobs[0].id]
    assert inbox(store) == 10
    assert store.count_in_state("available") == ABSORB + 9  # a reader takes the rest
    assert inbox(store) == 0


def test_a_failed_quick_write_falls_back_to_the_script(store, monkeypatch):
    def lost(packed: bytes, replies: int) -> list[object]:
        raise redis.ConnectionError("connection lost before the transaction ran")

    monkeypatch.setattr(store, "send_raw", lost)
    new = job(T0)
    store.enqueue([new], now=T0)
    assert inbox(store) == 0  # written by the script, indexed at once
    assert claim(store) == [new.id]


def test_a_push_whose_reply_is_lost_counts_as_written_once(store, monkeypatch):
    real = store.send_raw

    def reply_lost(packed: bytes, replies: int) -> list[object]:
        real(packed, replies)
        raise redis.ConnectionError("connection lost after the push ran")

    monkeypatch.setattr(store, "send_raw", reply_lost)
    new = job(T0)
    assert store.enqueue([new], now=T0).duplicates == {}  # not a DuplicateJob of itself
    monkeypatch.undo()
    assert claim(store) == [new.id]
    assert store.count_in_state("available") == 0


def test_the_own_connection_reconnects_after_a_restart(store):
    first = job(T0)
    store.enqueue([first], now=T0)
    store._own.conn.disconnect()  # as a restarted server leaves it: the next write reconnects
    second = job(T0)
    store.enqueue([second], now=T0)
    assert inbox(store) == 2
    assert claim(store) == [first.id, second.id]


def test_a_large_payload_takes_the_script_so_a_claim_reads_a_bounded_inbox(store):
    from runner.store.redis.quick import MAX_DATA

    small, large = (replace(job(T0), data=b"x" * n) for n in (MAX_DATA, MAX_DATA + 1))
    store.enqueue([small], now=T0)
    assert inbox(store) == 1
    store.enqueue([large], now=T0)
    assert inbox(store) == 0  # the script wrote it, after the inbox
    assert [c.data for c in store.claim(now=T0, owner=OWNER, lease_seconds=30,
                                        want=2).claimed] == [small.data, large.data]


def test_a_job_still_in_the_inbox_is_not_final(store):
    new = job(T0)
    store.enqueue([new], now=T0)
    assert inbox(store) == 1
    assert not store.job_is_final(new.id)  # what a result handle asks before it waits
    assert store.job_is_final("no-such-job")


def _subscribed(store: RedisStore):  # noqa: ANN202
    pubsub = store.r.pubsub()
    pubsub.subscribe(store.k("wake"))
    confirmed = pubsub.get_message(timeout=5.0)  # the reply to SUBSCRIBE comes first
    assert confirmed is not None and confirmed["type"] == "subscribe"
    return pubsub


def _messages(pubsub) -> int:  # noqa: ANN001
    count = 0
    while pubsub.get_message(timeout=0.2) is not None:
        count += 1
    return count


def test_an_idle_worker_is_woken_at_once_by_a_quick_job(store):
    woken = threading.Event()
    stop = store.listen(woken.set)
    assert stop is not None
    producer = RedisStore(store.url, prefix=store.prefix)
    try:
        assert woken.wait(5)  # the listener looks once as it subscribes
        for _ in range(3):  # each time the worker has taken the inbox and waits again
            woken.clear()
            started = time.monotonic()
            producer.enqueue([job(T0)], now=T0)
            assert woken.wait(1.0), "no wake-up for a job pushed into an empty inbox"
            assert time.monotonic() - started < 0.5  # at once, not at a poll
            assert len(claim(store)) == 1
    finally:
        stop()
        producer.close()


def test_a_burst_of_quick_jobs_publishes_one_wake_up(store):
    pubsub = _subscribed(store)
    try:
        for _ in range(5):
            store.enqueue([job(T0)], now=T0)
        assert _messages(pubsub) == 1  # the push that found the inbox empty
        assert len(claim(store)) == 5
        store.enqueue([job(T0)], now=T0)
        assert _messages(pubsub) == 1  # the inbox was taken: the next push wakes again
    finally:
        pubsub.close()


def test_a_claim_that_leaves_part_of_the_inbox_asks_to_be_called_again_at_once(store):
    from runner.store.redis.lua_jobs import ABSORB

    for _ in range(ABSORB + 1):
        store.enqueue([job(T0, queue="elsewhere")], now=T0)
    result = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1, queues=["default"])
    assert result.claimed == [] and inbox(store) == 1
    assert result.next_due == T0  # no push publishes while the inbox holds jobs
    result = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1, queues=["default"])
    assert inbox(store) == 0 and result.next_due is None
