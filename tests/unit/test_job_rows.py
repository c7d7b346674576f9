"""Queue bounds: the count of waiting jobs per queue stays exact through every transition."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace

import pytest

from runner import configure, control
from runner.errors import QueueFull
from runner.sections import QueueSection
from runner.store.factory import store_for
from runner.store.sqlite import queries
from runner.store.sqlite.counters import recount_waiting
from runner.store.sqlite.maintenance import RetentionSection, prune
from runner.store.sqlite.models import WAITING_SQL, create_schema
from runner.store.sqlite.workers import recover_orphans
from runner.testing import drain
from tests import jobs
from tests.conftest import wait_for


def counted(db) -> dict[str, int]:
    return {q: n for q, n in db.query("SELECT queue, waiting FROM runner_queue") if n}


def actual(db) -> dict[str, int]:
    return dict(db.query(f"SELECT queue, count(*) FROM runner_job WHERE state IN {WAITING_SQL} "
                         "GROUP BY queue"))


def assert_exact(db) -> None:
    assert counted(db) == actual(db)


def bounded(huey, size: int):
    # These tests are about the bound itself: a full queue refuses at once.
    refuse = QueueSection(on_full="reject")
    configure(replace(huey.settings, worker=replace(huey.settings.worker, queue_size=size),
                      queues={"default": refuse, "other": refuse}))


def test_count_is_exact_after_every_kind_of_transition(huey):
    db = huey.jobs.db
    storage = huey.jobs
    ok = [jobs.add(1, n) for n in range(5)]  # enqueue
    jobs.record_run.schedule(("later",), delay=3600)  # scheduled
    failing = jobs.always_fails("x")  # retries twice, then dead
    assert_exact(db)
    assert counted(db) == {"default": 7}
    claimed = storage.claim_due(2)  # claim
    assert_exact(db)
    assert counted(db) == {"default": 5}
    for c in claimed:  # handed back at shutdown
        storage.finish(c.id, c.attempt, "available", "handed back")
        storage.release_inflight(c.id)
    assert_exact(db)
    assert counted(db) == {"default": 7}
    assert drain(include_scheduled=False) >= 5  # run, ack, fail into retrying
    assert_exact(db)
    wait_for(lambda: drain() >= 0 and queries.get_job(db, failing.id).state == "dead",
             message="the failing job to use up its retries")
    assert queries.get_job(db, failing.id).state == "dead"
    assert_exact(db)
    # dead/completed -> waiting
    assert control.retry_jobs(store_for(db), [failing.id, ok[0].id]) == 2
    assert_exact(db)
    waiting = [r[0] for r in db.query(f"SELECT id FROM runner_job WHERE state IN {WAITING_SQL}")]
    assert control.cancel_jobs(store_for(db), waiting[:1]) == 1  # cancel
    assert control.discard_jobs(store_for(db), waiting[1:2]) == 1  # discard
    assert_exact(db)
    # A worker dies holding a claim: recovery puts the job back in the queue.
    held = jobs.add(2, 2)
    claimed = storage.claim_due(10)
    assert held.id in {c.id for c in claimed}
    db.write(lambda c: c.execute("UPDATE runner_job SET lease_expires_at = 0 "
                                 "WHERE state = 'executing'"))
    assert_exact(db)
    recover_orphans(db, crash_limit=5, now=time.time())
    assert_exact(db)
    assert queries.get_job(db, held.id).state == "available"
    # Moving a waiting job to another queue, and deleting waiting rows outright.
    db.write(lambda c: c.execute("UPDATE runner_job SET queue = 'other' WHERE id = ?",
                                 (held.id,)))
    assert_exact(db)
    assert counted(db)["other"] == 1
    storage.flush_queue()  # huey's flush: due waiting jobs are cancelled
    assert_exact(db)
    db.write(lambda c: c.execute(f"DELETE FROM runner_job WHERE state IN {WAITING_SQL}"))
    assert_exact(db)
    assert counted(db) == {}
    prune(db, RetentionSection(completed_days=0, dead_days=0), now=time.time() + 10)
    assert_exact(db)
    assert queries.count_jobs(db) == 0


def test_bound_counts_queued_retries_and_lets_a_freed_slot_be_used(huey):
    bounded(huey, 2)
    jobs.add(1, 1)
    jobs.add(1, 2)
    with pytest.raises(QueueFull, match=r"2 jobs waiting \(2 ready, 0 scheduled or retrying\), "
                                        r"its bound is 2"):
        jobs.add(1, 3)
    huey.jobs.claim_due(1)
    jobs.add(1, 4)  # the claimed job left the queue
    with pytest.raises(QueueFull):
        jobs.add(1, 5)
    assert actual(huey.jobs.db) == {"default": 2}


def test_bound_is_per_queue(huey):
    bounded(huey, 1)
    jobs.add(1, 1)
    huey.enqueue(_on_queue(jobs.add.s(1, 2), "other"))
    with pytest.raises(QueueFull, match="queue 'other'"):
        huey.enqueue(_on_queue(jobs.add.s(1, 3), "other"))
    assert actual(huey.jobs.db) == {"default": 1, "other": 1}


def test_bound_counts_the_jobs_of_every_task_in_the_queue(huey):
    bounded(huey, 2)
    jobs.add(1, 1)
    jobs.record_run("x")
    with pytest.raises(QueueFull, match="2 jobs waiting"):
        jobs.add(1, 2)
    assert counted(huey.jobs.db) == actual(huey.jobs.db) == {"default": 2}


def _on_queue(task, queue):
    task.queue = queue
    return task


def test_jobs_written_without_an_enqueue_are_counted_by_a_recount(tmp_path):
    path = tmp_path / "seeded.db"
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn)
    for n, (queue, state) in enumerate([("a", "available"), ("a", "scheduled"),
                                        ("b", "retrying"), ("b", "completed")]):
        conn.execute("INSERT INTO runner_job (id, task, queue, state, data, run_at, created_at)"
                     " VALUES (?, 't', ?, ?, x'00', 0, 0)", (str(n), queue, state))
    assert dict(conn.execute("SELECT queue, waiting FROM runner_queue")) == {}
    recount_waiting(conn)
    assert dict(conn.execute("SELECT queue, waiting FROM runner_queue")) == {"a": 2, "b": 1}
