"""The intake: a single enqueue writes one unindexed row; the next transaction moves it."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from dataclasses import replace

import pytest

from runner import QueueFull, configure
from runner.errors import DatabaseLocked, JobNotFound
from runner.sections import QueueSection
from runner.store.factory import open_store
from runner.store.rows import JobFilter
from runner.store.sqlite import SqliteStore
from runner.store.sqlite.counters import read_totals
from runner.testing import drain
from tests import jobs


def rows(path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_single_enqueue_writes_one_row_of_the_intake_and_no_job_row(huey):
    jobs.add(1, 2)
    path = huey.jobs.db.path
    assert (rows(path, "runner_intake"), rows(path, "runner_job")) == (1, 0)


def test_a_worker_runs_jobs_of_the_intake_once_each(huey):
    results = [jobs.add(n, n) for n in range(5)]
    drain()
    assert [r.get() for r in results] == [0, 2, 4, 6, 8]
    path = huey.jobs.db.path
    assert (rows(path, "runner_intake"), rows(path, "runner_job")) == (0, 5)


def test_a_read_of_a_process_that_writes_sees_the_jobs_of_the_intake(huey):
    made = jobs.add(1, 2)
    store = huey.jobs.store
    assert store.get_job(made.id).state == "available"
    assert [j.id for j in store.list_jobs(JobFilter())] == [made.id]


def test_jobs_are_counted_as_enqueued_and_waiting_once_moved(huey):
    for n in range(3):
        jobs.add(n, n)
    jobs.noop()
    assert huey.jobs.store.waiting_in_queue("default") == 4
    totals = {t.task: t.enqueued for t in read_totals(huey.jobs.db)}
    assert (totals["add"], totals["noop"]) == (3, 1)


def test_the_intake_moves_its_jobs_in_the_order_they_were_written(huey):
    # Pages of jobs newest first read the table's rowids as creation order.
    made = []
    for n in range(6):
        task = jobs.add.s(n, n)
        task.queue = "even" if n % 2 == 0 else "odd"
        made.append(huey.enqueue(task).id)
    huey.jobs.store.absorb_intake()
    with contextlib.closing(sqlite3.connect(huey.jobs.db.path)) as conn:
        order = [i for (i,) in conn.execute("SELECT id FROM runner_job ORDER BY rowid")]
    assert order == made


def weighted(huey, **weights: int) -> None:
    configure(replace(huey.settings,
                      queues={name: QueueSection(weight=w) for name, w in weights.items()}))


def enqueue_over(huey, queues: list[str]) -> list[tuple[str, str]]:
    """One enqueue per job, each to its queue in turn; (queue, id) of each, in call order."""
    made = []
    for n, queue in enumerate(queues):
        task = jobs.add.s(n, n)
        task.queue = queue
        made.append((queue, huey.enqueue(task).id))
    return made


def moved_in_order(huey) -> list[tuple[str, str]]:
    huey.jobs.store.absorb_intake()
    with contextlib.closing(sqlite3.connect(huey.jobs.db.path)) as conn:
        return conn.execute("SELECT queue, id FROM runner_job ORDER BY rowid").fetchall()


def test_jobs_over_queues_of_unequal_weights_move_queue_by_queue_in_the_order_written(huey):
    # Each queue drains at its own pace: its jobs side by side, a claim of one queue's
    # jobs writes a few pages of the table, not a page for every few of them.
    weighted(huey, a=3, b=1)
    made = enqueue_over(huey, ["b", "a", "b", "a", "a", "b"])
    assert moved_in_order(huey) == [m for m in made if m[0] == "a"] + [
        m for m in made if m[0] == "b"]


def test_jobs_over_queues_of_equal_weights_move_in_the_order_written(huey):
    weighted(huey, a=2, b=2)
    made = enqueue_over(huey, ["b", "a", "b", "a"])
    assert moved_in_order(huey) == made


def test_each_move_is_grouped_on_its_own_so_earlier_jobs_keep_the_lower_rowids(huey):
    weighted(huey, a=3, b=1)
    first = enqueue_over(huey, ["b", "a"])
    huey.jobs.store.absorb_intake()
    second = enqueue_over(huey, ["b", "a"])
    assert moved_in_order(huey) == [first[1], first[0], second[1], second[0]]


def test_weights_changed_by_a_reload_decide_the_next_move(huey):
    weighted(huey, a=3, b=1)
    assert huey.jobs is not None  # the storage, opened with the weights
    huey.update_settings(replace(huey.settings, queues={}))
    made = enqueue_over(huey, ["b", "a", "b"])
    assert moved_in_order(huey) == made


def test_every_store_of_the_database_moves_by_the_weights_in_force(huey):
    weighted(huey, a=3, b=1)
    assert huey.jobs is not None  # the storage, opened with the weights
    SqliteStore(huey.jobs.db)  # another store of the same open file (a tool's, a test's)
    made = enqueue_over(huey, ["b", "a", "b", "a"])
    assert moved_in_order(huey) == [made[1], made[3], made[0], made[2]]


def test_a_grouped_move_is_claimed_by_weight_and_in_order_within_each_queue(huey):
    weighted(huey, a=3, b=1)
    made = enqueue_over(huey, ["a", "b"] * 8)
    limits = huey.task_registry.flow_limits(huey.settings)
    claimed = [c.id for c in huey.jobs.store.claim(now=time.time() + 1, owner="w",
                                                   lease_seconds=60, want=8,
                                                   limits=limits).claimed]
    queue_of = dict((i, q) for q, i in made)
    by_queue = {q: [i for i in claimed if queue_of[i] == q] for q in ("a", "b")}
    assert len(by_queue["a"]) == 6
    for queue, ids in by_queue.items():
        assert ids == [i for q, i in made if q == queue][:len(ids)]


def test_a_queue_bound_counts_the_jobs_of_the_intake(huey):
    settings = huey.settings
    configure(replace(settings, worker=replace(settings.worker, queue_size=3),
                      queues={"default": QueueSection(on_full="reject")}))
    for n in range(3):
        jobs.add(n, n)
    with pytest.raises(QueueFull):
        jobs.add(9, 9)
    path = huey.jobs.db.path
    assert rows(path, "runner_intake") + rows(path, "runner_job") == 3


def test_a_read_only_reader_lists_the_jobs_a_writer_moved_and_finds_one_by_id_before(huey):
    made = jobs.add(1, 2)
    reader = open_store(huey.jobs.db.path, readonly=True)
    try:
        assert reader.intake_waiting()  # a read-only connection cannot move them
        assert reader.list_jobs(JobFilter()) == []
        assert reader.get_job(made.id).state == "available"
        open_store(huey.jobs.db.path).absorb_intake()
        reader.refresh()
        assert [j.id for j in reader.list_jobs(JobFilter())] == [made.id]
        assert not reader.intake_waiting()
    finally:
        reader.close()


def test_a_read_does_not_wait_for_a_write_lock_held_elsewhere(huey):
    made = jobs.add(1, 2)
    holder = sqlite3.connect(huey.jobs.db.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # The jobs stay in the intake for now: the read neither waits nor fails, and a
        # job looked up by its id is found there.
        assert huey.jobs.store.list_jobs(JobFilter()) == []
        assert huey.jobs.store.get_job(made.id).attempt == 0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [j.id for j in huey.jobs.store.list_jobs(JobFilter())] == [made.id]
    with pytest.raises(JobNotFound):
        huey.jobs.store.get_job("no-such-job")


def test_a_job_of_the_intake_whose_id_is_taken_does_not_stop_the_file(huey, caplog):
    # Only ids made for the job go through the intake; were a taken one to, the jobs
    # behind it and every later write must go on.
    first = jobs.add(1, 2)
    huey.jobs.store.absorb_intake()
    with contextlib.closing(sqlite3.connect(huey.jobs.db.path)) as conn, conn:
        conn.execute("INSERT INTO runner_intake (id, task, queue, priority, state, data, "
                     "max_attempts, run_at, created_at) SELECT id, task, queue, priority, "
                     "state, data, max_attempts, run_at, created_at FROM runner_job")
    second = jobs.add(3, 4)
    drain()
    assert (first.get(), second.get()) == (3, 7)
    assert "had the id of a job already written" in caplog.text


def _hold_write_lock(path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_single_enqueue_at_a_file_locked_past_write_deadline_writes_nothing(huey):
    settings = huey.settings
    configure(replace(settings, database=replace(settings.database, busy_timeout=0.1,
                                                 write_deadline=0.3)))
    jobs.add(0, 0)  # the file and its schema exist before the lock is taken
    path = huey.jobs.db.path
    holder = _hold_write_lock(path)
    try:
        with pytest.raises(DatabaseLocked, match="stayed locked for 0.3s; nothing was written"):
            jobs.add(1, 2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert rows(path, "runner_intake") + rows(path, "runner_job") == 1


def test_a_single_enqueue_waits_for_a_write_lock_released_in_time(huey):
    jobs.add(0, 0)
    path = huey.jobs.db.path
    holder = _hold_write_lock(path)
    release = threading.Timer(0.2, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        made = jobs.add(1, 2)  # SQLite's busy wait outlasts the holder
    finally:
        release.join()
        holder.close()
    drain()
    assert made.get() == 3


def test_a_bounded_queue_refuses_when_the_intake_alone_fills_it(huey):
    # The bound is checked by the statement that writes the row: the intake's jobs,
    # not yet counted as waiting, are counted with the queue's own.
    settings = huey.settings
    configure(replace(settings, worker=replace(settings.worker, queue_size=2),
                      queues={"default": QueueSection(on_full="reject")}))
    jobs.add(1, 1)
    jobs.add(2, 2)
    path = huey.jobs.db.path
    assert rows(path, "runner_intake") == 2
    with pytest.raises(QueueFull):
        jobs.add(3, 3)
    assert rows(path, "runner_intake") + rows(path, "runner_job") == 2


def test_a_job_moved_out_of_the_intake_between_two_reads_is_still_found(huey, monkeypatch):
    # A lookup reads runner_job, then the intake: a worker moving the job in between
    # must not make it "not found" (it is in neither place only for no one).
    from runner.store.sqlite import queries

    made = jobs.add(1, 2)
    path = huey.jobs.db.path
    reader = open_store(path, readonly=True)  # cannot move the intake itself
    mover = open_store(path)
    original = queries.lookup_id
    moved = []

    def lookup_then_move(*args, **kwargs):
        found = original(*args, **kwargs)
        if not moved:
            moved.append(mover.absorb_intake())
        return found

    monkeypatch.setattr(queries, "lookup_id", lookup_then_move)
    try:
        assert reader.get_job(made.id).state == "available"
        assert moved
    finally:
        reader.close()
        mover.close()
