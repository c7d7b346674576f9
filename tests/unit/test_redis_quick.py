"""Redis: the quick enqueue (four plain writes and an inbox entry) and the inbox's indexing.

A fresh plain job is written without a script and indexed by the next claim or
script, in bulk; every reader sees it as waiting before that, and rowids keep the
order of enqueueing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from runner.errors import DuplicateJob
from runner.store.job_rows import QueueBound
from runner.store.redis import RedisStore
from runner.store.redis.quick import push_request
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


def test_the_request_is_what_the_client_would_send():
    new = job(T0, queue="mail", priority=3, concurrency_key="k\x1fx")
    packed = push_request(b"pre:", new, T0 + 1)
    entry = b"3\x1f%s\x1f%020.6f\x1ftests.jobs.add\x1f%s\x1fmail" % (
        repr(T0).encode(), T0, new.id.encode())
    conn = redis.Redis().connection_pool.make_connection()
    expected = b"".join(conn.pack_commands([
        ("MULTI",),
        ("HSET", f"pre:job:{new.id}", "id", new.id, "task", new.task, "queue", "mail",
         "priority", "3", "max_attempts", "1", "run_at", repr(T0), "created_at", repr(T0 + 1),
         "attempt", "0", "crashes", "0", "failures", "0", "state", "available",
         "args", "()", "concurrency_key", "k\x1fx"),
        ("SET", f"pre:data:{new.id}", b"payload"),
        ("RPUSH", "pre:inbox", entry),
        ("PUBLISH", "pre:wake", "1"),
        ("EXEC",)]))
    assert packed == expected


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
    ids = [r.id for r in store.list_jobs(None)]
    assert ids == [later.id, second.id, first.id]  # newest first, by rowid


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


def test_the_own_connection_reconnects_after_a_restart(store):
    first = job(T0)
    store.enqueue([first], now=T0)
    store._own.conn.disconnect()  # as a restarted server leaves it: the next write reconnects
    second = job(T0)
    store.enqueue([second], now=T0)
    assert inbox(store) == 2
    assert claim(store) == [first.id, second.id]
