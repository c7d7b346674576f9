"""Redis memory stays bounded: retention leaves no key of what it pruned."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from runner.flow import FlowLimits
from runner.service_sections import RetentionSection
from runner.store.event_rows import NewEvent
from runner.store.job_rows import Ack
from runner.store.redis import RedisStore
from runner.store.rows import DISPATCH_TASK
from tests.conformance.helpers import OWNER, T0, failure, job
from tests.redis_support import fresh_store

DAY = 86400.0
#: Counters and names that stay whatever is pruned (a few bytes each; ``totals``: the
#: lifetime counters per task and queue).
BOOKKEEPING = {"rowid", "errseq", "logseq", "queues", "version", "totals"}


@pytest.fixture
def store() -> Iterator[RedisStore]:
    with fresh_store() as opened:
        yield opened


def _kinds(store: RedisStore) -> set[str]:
    """The kinds of key left, but those that expire by themselves (a call's token, the
    last claim of a worker: see ``once`` and ``claimed`` in :mod:`.lua_jobs`)."""
    return {k.decode()[len(store.p):].split(":")[0] for k in store.r.scan_iter(
        match=store.p + "*", count=1000) if store.r.ttl(k) < 0}


def test_retention_leaves_no_key_of_what_it_pruned(store):
    done, dead, handler = job(), job(max_attempts=1), job(task="h", event_id="ev-1")
    store.insert_events([NewEvent("ev-1", "order.paid", json.dumps({}), "k", "test")],
                        [(job(task=DISPATCH_TASK, job_id="ev-1"), ["ev-1"])], now=T0,
                        dedupe_window=60, deadline=5)
    store.enqueue([done, dead], now=T0)
    claimed = [c.id for c in store.claim(now=T0, owner=OWNER, lease_seconds=30,
                                         want=10).claimed]
    assert set(claimed) == {done.id, dead.id, "ev-1"}
    store.write_logs([(T0, 20, "app", "hello", done.id, "tests.jobs.add", OWNER),
                      (T0, 20, "runner", "worker line", None, None, OWNER)])
    store.complete([Ack(done.id, 1, T0, T0 + 1, results=((done.id, b"42"),))])
    store.bury(dead.id, 1, failure(), worker=OWNER, now=T0 + 1, reason="x")
    store.fan_out({"ev-1": [handler]}, now=T0 + 1)
    store.complete([Ack("ev-1", 1, T0, T0 + 1)])
    [c] = store.claim(now=T0 + 2, owner=OWNER, lease_seconds=30, want=1).claimed
    store.complete([Ack(c.id, 1, T0 + 2, T0 + 3)])
    store.register(OWNER, concurrency=1, queues=(), now=T0)
    store.mark_stopped(OWNER, now=T0 + 4)
    assert store.count_jobs() == 4

    report = store.prune_retention(RetentionSection(), now=T0 + 365 * DAY)

    assert report.deleted == {"jobs": 4, "logs": 2, "events": 1, "workers": 1}
    assert _kinds(store) <= BOOKKEEPING


def test_unique_keys_running_counts_and_cancel_requests_leave_no_key_once_pruned(store):
    keyed = job(task="sync", unique_key="k", concurrency_key="u1")
    asked = job(unique_key="k2")
    store.enqueue([keyed, asked], now=T0)
    claimed = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=10,
                          limits=FlowLimits(key_concurrency={"sync": 1}))
    assert {c.id for c in claimed.claimed} == {keyed.id, asked.id}
    store.request_cancel(asked.id, by="alice", now=T0)
    store.complete([Ack(keyed.id, 1, T0, T0 + 1)])
    store.cancel_attempt(asked.id, 1, now=T0 + 1, reason="cancelled by alice")

    store.prune_retention(RetentionSection(), now=T0 + 365 * DAY)

    assert store.count_jobs() == 0
    assert _kinds(store) <= BOOKKEEPING | {"owners"}  # the worker is still on record
