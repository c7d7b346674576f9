"""Lifetime counters: each outcome counted once, in its own transaction, never lowered."""

from __future__ import annotations

import time

import pytest

from runner import control
from runner.store.factory import store_for
from runner.store.job_rows import Ack
from runner.store.sqlite.counters import BUCKETS, count_where, read_totals
from runner.store.sqlite.maintenance import RetentionSection, prune
from runner.store.sqlite.transitions import complete as write_acks
from runner.store.sqlite.workers import recover_orphans
from runner.testing import drain
from tests import jobs


def totals(db, task):
    return next((t for t in read_totals(db) if t.task == task), None)


def test_each_outcome_is_counted_once_per_task_and_queue(huey):
    db = huey.jobs.db
    for i in range(3):
        jobs.add(i, i)
    jobs.always_fails("a")
    drain(include_scheduled=True)
    later = jobs.noop.schedule(delay=3600)
    jobs.noop.schedule(delay=3600)
    assert control.cancel_jobs(store_for(db), [later.id]) == 1

    add = totals(db, "add")
    assert (add.enqueued, add.completed, add.failed, add.dead) == (3, 3, 0, 0)
    assert add.buckets[-1] == 3 and add.duration_sum >= 0
    fails = totals(db, "always_fails")
    assert (fails.enqueued, fails.completed, fails.failed, fails.retried, fails.dead) == \
        (1, 0, 3, 2, 1)
    noop = totals(db, "noop")
    assert (noop.enqueued, noop.cancelled, noop.completed) == (2, 1, 0)
    # Cancelling again changes nothing, so counts nothing.
    assert control.cancel_jobs(store_for(db), [later.id]) == 0
    assert totals(db, "noop").cancelled == 1


def test_histogram_buckets_are_cumulative_by_duration(huey):
    db = huey.jobs.db
    made = [jobs.add(i, i) for i in range(3)]
    claimed = huey.jobs.claim_due(3)
    assert len(claimed) == 3
    took = {made[0].id: 0.001, made[1].id: 0.3, made[2].id: 100.0}
    acks = [Ack(c.id, c.attempt, 1000.0, 1000.0 + took[c.id]) for c in claimed]
    labels = {c.id: ("add", "default") for c in claimed}
    db.write(lambda conn: write_acks(conn, acks[:2], labels))  # counted from the labels
    db.write(lambda conn: write_acks(conn, acks[2:]))  # counted from the rows
    add = totals(db, "add")
    assert add.completed == 3 and add.duration_sum == pytest.approx(100.301)
    expected = tuple(sum(1 for d in took.values() if d <= le) for le in BUCKETS)
    assert add.buckets == expected
    assert add.buckets[0] == 1 and add.buckets[-1] == 3


def test_a_rolled_back_outcome_is_not_counted(huey):
    db = huey.jobs.db
    jobs.add(1, 2)
    (claimed,) = huey.jobs.claim_due(1)

    def fails_after_writing(conn):
        write_acks(conn, [Ack(claimed.id, claimed.attempt, None, time.time())])
        raise RuntimeError("disk went away")

    with pytest.raises(RuntimeError):
        db.write(fails_after_writing)
    assert totals(db, "add").completed == 0
    # Written for real it counts once; a stale ack of the finished job does not.
    db.write(lambda conn: write_acks(conn, [Ack(claimed.id, claimed.attempt, None, time.time())]))
    db.write(lambda conn: write_acks(
        conn, [Ack(claimed.id, claimed.attempt, None, time.time() + 1)]))
    assert totals(db, "add").completed == 1


def test_crashed_attempts_count_as_failed_then_retried_or_dead(huey):
    db = huey.jobs.db
    first, second = jobs.noop(1), jobs.noop(2)
    huey.jobs.claim_due(2)
    gone = "elsewhere:1:0"
    db.write(lambda c: c.execute("UPDATE runner_job SET lease_owner=?, lease_expires_at=0, "
                                 "crashes = CASE id WHEN ? THEN 1 ELSE 0 END",
                                 (gone, second.id)))
    recovery = recover_orphans(db, crash_limit=2, now=time.time())
    assert recovery.requeued == [first.id] and recovery.buried == [second.id]
    noop = totals(db, "noop")
    assert (noop.failed, noop.retried, noop.dead) == (2, 1, 1)


def test_counters_stay_when_the_jobs_are_pruned(huey):
    db = huey.jobs.db
    for i in range(4):
        jobs.add(i, i)
    drain()
    before = totals(db, "add")
    report = prune(db, RetentionSection(), now=time.time() + 30 * 86400)
    assert report.deleted["jobs"] == 4
    assert db.query("SELECT count(*) FROM runner_job")[0][0] == 0
    assert totals(db, "add") == before


def test_count_where_refuses_an_unknown_outcome(huey):
    with pytest.raises(ValueError, match="unknown outcome"):
        huey.jobs.db.write(lambda conn: count_where(conn, "completed", "1"))


def test_a_batch_with_a_stale_completion_counts_only_what_it_wrote(huey):
    db = huey.jobs.db
    first, second = jobs.add(1, 1), jobs.add(2, 2)
    claimed = {c.id: c for c in huey.jobs.claim_due(2)}
    db.write(lambda c: c.execute("UPDATE runner_job SET attempt=attempt+1 WHERE id=?",
                                 (second.id,)))  # recovered and claimed again meanwhile
    labels = {first.id: ("add", "default"), second.id: ("add", "default")}
    acks = [Ack(job_id, c.attempt, c.started_at, c.started_at + 0.2)
            for job_id, c in claimed.items()]
    db.write(lambda conn: write_acks(conn, acks, labels))
    add = totals(db, "add")
    assert add.completed == 1 and add.duration_sum == pytest.approx(0.2)
    # And a whole batch written with labels is counted from them alone
    jobs.add(3, 3)
    (again,) = huey.jobs.claim_due(1)
    ack = Ack(again.id, again.attempt, again.started_at, again.started_at + 2)
    db.write(lambda conn: write_acks(conn, [ack], {again.id: ("add", "default")}))
    assert totals(db, "add").completed == 2


def test_a_bulk_cancel_counts_each_job_it_cancels(huey):
    from runner.store.sqlite.queries import JobFilter

    db = huey.jobs.db
    for i in range(5):
        jobs.add.schedule(args=(i, i), delay=3600)
    plan = control.plan_bulk(store_for(db), "cancel", JobFilter(task="add"))
    assert control.run_bulk(store_for(db), plan, chunk=2) == 5
    assert totals(db, "add").cancelled == 5


def test_the_counter_columns_written_are_the_models_columns():
    from runner.store.sqlite.counters import _BUCKET_COLUMNS, TOTALS
    from runner.store.tables import JobTotal

    assert [f.column_name for f in JobTotal._meta.sorted_fields] == [
        "task", "queue", *TOTALS, "duration_sum", *_BUCKET_COLUMNS, "waiting"]


def test_upkeep_recounts_a_queue_count_that_drifted_so_limited_claims_see_its_jobs(
        huey, caplog):
    # Given jobs a queue's count does not hold (written by a process of an older release
    # still running through an upgrade, or by hand), under a concurrency limit
    from runner.flow import FlowLimits
    from tests.conformance.helpers import job

    store = store_for(huey.jobs.db)
    now = time.time()
    store.enqueue([job(now, queue="work") for _ in range(3)], now=now)
    huey.jobs.db.write(lambda c: c.execute(
        "UPDATE runner_job_total SET waiting = 0 WHERE task = '' AND queue = 'work'"))
    limits = FlowLimits(queue_concurrency={"work": 2})
    assert store.claim(now=now, owner="w", lease_seconds=60, want=5, limits=limits).claimed == []
    # When the worker's upkeep runs
    with caplog.at_level("WARNING", logger="runner.store.sqlite.maintenance"):
        prune(huey.jobs.db, RetentionSection(), now=now)
    # Then the count is right again, said so, and the queue's jobs are claimed
    assert "queue 'work' counted 0 waiting jobs, there are 3" in caplog.text
    claimed = store.claim(now=now, owner="w", lease_seconds=60, want=5, limits=limits).claimed
    assert len(claimed) == 2  # the limit, not the count, holds the third back
