"""Redis: a write whose reply is lost with its connection takes effect once.

The client sends a command again after a lost connection (it rides out a
restart of Redis that way), and a connection the server drops after running a
function but before its reply left (``CLIENT KILL``, a network cut) looks the
same as one dropped before: the function runs twice. Each of these must then
answer as the first run did, not write its effect a second time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from runner.store.event_rows import NewEvent
from runner.store.job_rows import Ack
from runner.store.redis import RedisStore
from runner.store.rows import DISPATCH_TASK
from tests.conformance.helpers import OWNER, T0, failure, job
from tests.redis_support import REDIS_URL, ReplyCutter, new_prefix, redis_or_skip


@pytest.fixture
def cutter() -> Iterator[ReplyCutter]:
    redis_or_skip()
    relay = ReplyCutter()
    yield relay
    relay.close()


@pytest.fixture
def store(cutter: ReplyCutter) -> Iterator[RedisStore]:
    opened = RedisStore(cutter.url, prefix=new_prefix())
    try:
        yield opened
    finally:
        opened.delete_all()
        opened.close()


def function(name: str) -> bytes:
    """What a request to run the function ``name`` holds (its registered name's end)."""
    return f"_{name}\r\n".encode()


def test_a_failed_attempt_whose_reply_was_lost_is_recorded_once(store, cutter):
    new = job(T0, max_attempts=3)
    store.enqueue([new], now=T0)
    [claimed] = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1).claimed
    cutter.lose_reply_to(function("fail"))
    store.retry(new.id, claimed.attempt, failure("first"), worker=OWNER, now=T0 + 1,
                run_at=T0 + 2, reason=None)
    assert cutter.cut == 1
    row = store.get_job(new.id)
    assert (row.state, row.attempt, row.failures) == ("retrying", 1, 1)
    assert [(e.attempt, e.message) for e in store.job_errors(new.id)] == [(1, "first")]


def test_a_claim_whose_reply_was_lost_hands_over_the_jobs_it_took(store, cutter):
    made = [job(T0) for _ in range(3)]
    store.enqueue(made, now=T0)
    cutter.lose_reply_to(function("claim"))
    result = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=3)
    assert cutter.cut == 1
    assert sorted(c.id for c in result.claimed) == sorted(j.id for j in made)
    assert [c.attempt for c in result.claimed] == [1, 1, 1]
    assert result.claimed[0].data == b"payload"


def test_an_enqueue_whose_reply_was_lost_is_written_once_and_not_refused(store, cutter):
    later = job(T0 + 60)  # a delayed job: the scripted enqueue
    cutter.lose_reply_to(function("enqueue"))
    assert store.enqueue([later], now=T0).duplicates == {}
    assert cutter.cut == 1
    assert store.get_job(later.id).state == "scheduled"
    assert store.counts_by_state()["scheduled"] == 1


def test_a_batch_whose_enqueue_reply_was_lost_does_not_count_against_its_bound(store,
                                                                            cutter):
    batch = [job(T0) for _ in range(2)]
    cutter.lose_reply_to(function("enqueue"))
    assert store.enqueue(batch, now=T0, queue_size=2).duplicates == {}  # not QueueFull
    assert cutter.cut == 1
    assert store.counts_by_state()["available"] == 2


def test_a_unique_job_whose_enqueue_reply_was_lost_is_not_its_own_duplicate(store, cutter):
    keyed = job(T0, unique_key="report")
    cutter.lose_reply_to(function("enqueue"))
    assert store.enqueue([keyed], now=T0).duplicates == {}
    assert cutter.cut == 1
    assert store.get_job(keyed.id).state == "available"


def test_a_release_whose_reply_was_lost_gives_back_its_attempt_once(store, cutter):
    new = job(T0)
    store.enqueue([new], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1)
    cutter.lose_reply_to(function("release"))
    store.release(new.id, T0 + 60)
    assert cutter.cut == 1
    row = store.get_job(new.id)
    assert (row.state, row.attempt) == ("scheduled", 0)


def emit(store: RedisStore, event_id: str, *, now: float = T0, delay: float = 0.0) -> str:
    """Write one event as ``emit`` does: with a dispatch job of its own id."""
    event = NewEvent(event_id, "order.paid", json.dumps({"order": 7}), None, "test")
    dispatch = job(now + delay, task=DISPATCH_TASK, job_id=event_id)
    [written] = store.insert_events([event], [(dispatch, [event_id])], now=now,
                                    dedupe_window=60.0, deadline=5.0)
    return written


def test_a_delayed_event_whose_emit_reply_was_lost_is_not_refused(store, cutter):
    cutter.lose_reply_to(function("insert_events"))
    assert emit(store, "ev-1", delay=60) == "ev-1"  # not DuplicateJob for its dispatch job
    assert cutter.cut == 1
    assert store.count_events() == 1
    assert store.get_job("ev-1").state == "scheduled"


def test_an_event_dispatched_before_its_emit_was_sent_again_is_not_dispatched_twice(store,
                                                                                  cutter):
    # Given an event whose dispatch job waits: the next event emitted shares it.
    emit(store, "ev-1")
    worker = RedisStore(REDIS_URL, prefix=store.prefix)

    def dispatch() -> None:
        # A worker runs that dispatch job before the lost emit is sent again.
        [claimed] = worker.claim(now=T0 + 1, owner=OWNER, lease_seconds=30, want=1).claimed
        assert claimed.id == "ev-1"
        worker.fan_out({"ev-1": [job(T0, task="h", event_id="ev-1")],
                        "ev-2": [job(T0, task="h", event_id="ev-2")]}, settle=["ev-2"],
                       now=T0 + 1)

    cutter.lose_reply_to(function("insert_events"), then=dispatch)
    try:
        assert emit(store, "ev-2", now=T0 + 1) == "ev-2"
    finally:
        worker.close()
    assert cutter.cut == 1
    event = store.get_event("ev-2")
    assert (event.status, event.handlers, event.deliveries) == ("dispatched", 1, 1)
    assert store.pending_events(["ev-2"]) == []  # no dispatch delivers it again
    assert store.count_jobs() == 3  # ev-1's dispatch job and one handler job per event


def test_a_redispatch_whose_reply_was_lost_is_not_refused(store, cutter):
    emit(store, "ev-1")
    [claimed] = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1).claimed
    store.fan_out({"ev-1": []}, now=T0 + 1)  # no handler then: unhandled
    store.complete([Ack("ev-1", claimed.attempt, T0, T0 + 1)])
    cutter.lose_reply_to(function("redispatch_event"))
    store.redispatch_event("ev-1", "ev-1", now=T0 + 5)  # not "being dispatched now"
    assert cutter.cut == 1
    assert store.get_event("ev-1").status == "pending"
    assert store.get_job("ev-1").state == "available"
    assert store.count_unhandled() == 0


def test_log_lines_whose_write_reply_was_lost_are_stored_once(store, cutter):
    rows = [(T0, 20, "tests.jobs", f"line {n}", "job-1", "tests.jobs.add", OWNER)
            for n in range(3)]
    cutter.lose_reply_to(function("write_logs"))
    store.write_logs(rows)
    assert cutter.cut == 1
    assert sorted(r.message for r in store.tail_logs(job_id="job-1")) == [
        "line 0", "line 1", "line 2"]
    assert store.job_log_bytes("job-1") == len("line 0") * 3
