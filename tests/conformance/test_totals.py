"""Lifetime counters per task and queue (what ``/metrics`` exports as ``_total``): each
outcome counted once, never lowered by pruning, kept by every backend."""

from __future__ import annotations

import pytest

from runner.errors import QueueFull
from runner.service_sections import RetentionSection
from runner.store.backend import Store
from runner.store.job_rows import Ack, QueueBound
from runner.store.views import BUCKETS, TaskTotals
from tests.conformance.helpers import OWNER, T0, failure, job

LEASE = 30.0


def totals(store: Store, task: str, queue: str = "default") -> TaskTotals:
    found = [t for t in store.read_snapshot(now=T0).totals
             if (t.task, t.queue) == (task, queue)]
    assert found, f"no totals for {task} in {queue}"
    return found[0]


def claim_all(store: Store, now: float) -> dict[str, int]:
    result = store.claim(now=now, owner=OWNER, lease_seconds=LEASE, want=50)
    return {c.id: c.attempt for c in result.claimed}


def test_each_outcome_is_counted_once_per_task_and_queue(store):
    adds = [job(task="add") for _ in range(3)]
    flaky = job(task="flaky", max_attempts=2)
    later = job(T0 + 3600, task="noop")
    other_queue = job(task="add", queue="mail")
    store.enqueue([*adds, flaky, later, other_queue], now=T0)
    claimed = claim_all(store, T0)
    took = {adds[0].id: 0.001, adds[1].id: 0.3, adds[2].id: 100.0}
    store.complete([Ack(j, claimed[j], T0, T0 + d) for j, d in took.items()])
    store.retry(flaky.id, claimed[flaky.id], failure(), worker=OWNER, now=T0 + 1,
                run_at=T0 + 1, reason="retrying")
    again = claim_all(store, T0 + 2)
    store.bury(flaky.id, again[flaky.id], failure(), worker=OWNER, now=T0 + 3, reason="dead")
    assert store.cancel_jobs([later.id], now=T0 + 4) == 1
    assert store.cancel_jobs([later.id], now=T0 + 5) == 0  # changes nothing, counts nothing

    add = totals(store, "add")
    assert (add.enqueued, add.completed, add.failed, add.retried, add.dead, add.cancelled) \
        == (3, 3, 0, 0, 0, 0)
    assert add.duration_sum == pytest.approx(100.301)
    assert add.buckets == tuple(sum(1 for d in took.values() if d <= le) for le in BUCKETS)
    assert totals(store, "add", "mail").enqueued == 1
    fl = totals(store, "flaky")
    assert (fl.enqueued, fl.completed, fl.failed, fl.retried, fl.dead) == (1, 0, 2, 1, 1)
    noop = totals(store, "noop")
    assert (noop.enqueued, noop.cancelled, noop.completed) == (1, 1, 0)


def test_a_stale_ack_of_a_finished_job_is_not_counted_again(store):
    store.enqueue([job(task="add")], now=T0)
    [(job_id, attempt)] = claim_all(store, T0).items()
    store.complete([Ack(job_id, attempt, T0, T0 + 1)])
    store.complete([Ack(job_id, attempt, T0, T0 + 2)])
    assert totals(store, "add").completed == 1


def test_counters_stay_when_the_jobs_are_pruned(store):
    store.enqueue([job(task="add") for _ in range(4)], now=T0)
    store.complete([Ack(j, a, T0, T0 + 0.5) for j, a in claim_all(store, T0).items()])
    before = totals(store, "add")
    assert before.completed == 4
    report = store.prune_retention(RetentionSection(), now=T0 + 400 * 86400)
    assert report.deleted["jobs"] == 4
    assert totals(store, "add") == before


def test_the_snapshot_reports_paused_queues_and_refused_and_dropped_jobs(store):
    # Given a paused queue, a resumed one, and queues that refused and dropped jobs
    store.set_pause("queue", "reports", True, now=T0, by="ops")
    store.set_pause("queue", "mail", True, now=T0, by="ops")
    store.set_pause("queue", "mail", False, now=T0 + 1, by="ops")
    store.enqueue([job(queue="strict")], now=T0, bounds={"strict": QueueBound(1, "reject")})
    with pytest.raises(QueueFull):
        store.enqueue([job(queue="strict")], now=T0,
                      bounds={"strict": QueueBound(1, "reject")})
    feed = {"feed": QueueBound(1, "drop_oldest")}
    store.enqueue([job(queue="feed")], now=T0, bounds=feed)
    store.enqueue([job(queue="feed")], now=T0 + 1, bounds=feed)
    # When a scrape reads the database, Then it says so, as /metrics exports it
    snapshot = store.read_snapshot(now=T0 + 2)
    assert snapshot.paused_queues == {"reports": True, "mail": False}
    assert snapshot.backpressure["strict"] == (1, 0)
    assert snapshot.backpressure["feed"] == (0, 1)
