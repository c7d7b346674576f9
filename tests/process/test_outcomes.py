"""A job's outcome and what follows from it are written together, or the job runs again."""

from __future__ import annotations

import signal
import sqlite3
import time

from runner.store.sqlite import queries
from tests import jobs
from tests.conftest import read_records, wait_for, write_settings


def locked_settings(tmp_path):
    path = write_settings(tmp_path, name="locked.toml")
    path.write_text(path.read_text().replace(
        "busy_timeout = 10", "busy_timeout = 0.2\nwrite_deadline = 1"))
    return path


def gave_up(worker, what: str) -> bool:
    """Whether the worker has logged ``what`` for a lock it waited out write_deadline for."""
    return any(what in line and "stayed locked" in line
               for line in worker.output().splitlines())


def gave_up_after(worker, what: str) -> bool:
    """Whether a write gave up on the lock after the worker logged ``what`` for it."""
    lines = worker.output().splitlines()
    first = next((i for i, line in enumerate(lines)
                  if what in line and "stayed locked" in line), None)
    return first is not None and any("stayed locked" in line for line in lines[first + 1:])


def test_result_and_pipeline_step_survive_a_lock_held_past_write_deadline(
        huey, tmp_path, make_worker, record_file):
    worker = make_worker(settings=locked_settings(tmp_path), TEST_RECORD_FILE=str(record_file))
    gate = tmp_path / "gate"
    pipeline = jobs.wait_for_file.s(str(gate), "forty-two").then(jobs.record_run)
    first, second = huey.enqueue(pipeline)
    db = huey.jobs.db
    wait_for(lambda: queries.get_job(db, first.id).state == "executing", message="job to start")

    blocker = sqlite3.connect(db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # every writer of the worker waits from now on
    try:
        gate.touch()  # the job returns while it cannot write its outcome
        # Held until the outcome's write has given up (past write_deadline, 1 s) and so
        # has a write after it, which tries the kept outcome again.
        wait_for(lambda: gave_up_after(worker, f"job={first.id}]: outcomes of"),
                 message="the outcome's write and the next one to give up")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert first.get(blocking=True, timeout=20) == "forty-two"
    assert second.get(blocking=True, timeout=20) == "forty-two"
    wait_for(lambda: queries.get_job(db, second.id).state == "completed",
             message="the pipeline step to complete")
    row = queries.get_job(db, first.id)
    assert (row.state, row.attempt, row.crashes) == ("completed", 1, 0)
    assert [line.split()[0] for line in read_records(record_file)] == ["forty-two"]


def test_a_job_that_failed_then_returned_none_answers_none_however_it_is_read(
        huey, tmp_path, make_worker):
    # Given a job whose first attempt fails and whose second returns None, run by a worker
    make_worker()
    result = jobs.fails_then_returns_none(str(tmp_path / "count"), 1)
    db = huey.jobs.db
    wait_for(lambda: queries.get_job(db, result.id).state == "completed",
             message="the second attempt to complete")
    # When its result is read, kept or taken, blocking or not, Then it is None, not the
    # first attempt's error
    assert result.get(preserve=True) is None
    assert result.get(blocking=True, timeout=5, preserve=True) is None
    assert result.get(blocking=True, timeout=5) is None
    assert result.get() is None


def test_a_lock_held_past_write_deadline_is_warned_of_without_tracebacks(
        huey, tmp_path, make_worker):
    worker = make_worker(settings=locked_settings(tmp_path))
    assert jobs.add(1, 1).get(blocking=True, timeout=20) == 2
    later = jobs.add.schedule((2, 2), delay=1)  # due while the lock is held
    blocker = sqlite3.connect(huey.jobs.db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        # Held until the job is due and the claim and the heartbeat have each given up
        # on the lock (past write_deadline, 1 s); readers are not held back in WAL mode.
        due = queries.get_job(huey.jobs.db, later.id).run_at
        wait_for(lambda: time.time() > due and gave_up(worker, "claim failed")
                 and gave_up(worker, "lifeline pass failed"),
                 message="the claim and the heartbeat to give up on the lock")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert later.get(blocking=True, timeout=20) == 4
    output = worker.output()
    assert "locked" in output
    assert "Traceback" not in output and " ERROR " not in output, output


def test_a_drain_that_cannot_write_for_a_lock_exits_75_not_0(huey, tmp_path, make_worker,
                                                             record_file):
    worker = make_worker(settings=locked_settings(tmp_path), TEST_RECORD_FILE=str(record_file))
    long = jobs.sleep_then_record(60, "long")
    db = huey.jobs.db
    wait_for(lambda: queries.get_job(db, long.id).state == "executing", message="job to start")
    blocker = sqlite3.connect(db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        worker.proc.send_signal(signal.SIGTERM)
        # The drain (shutdown_timeout 5 s) ends, then handing the job back meets the lock
        # past write_deadline (1 s): the exit code says the shutdown was not clean.
        code = worker.wait(timeout=30)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert code == 75, worker.output()
    assert "locked" in worker.output()


def drain_under_a_lock(worker, path, gate) -> int:
    """SIGTERM the worker and let its jobs (waiting on ``gate``) finish while another
    process holds the write lock; the worker's exit code."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        worker.proc.send_signal(signal.SIGTERM)
        gate.touch()
        return worker.wait(timeout=30)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_jobs_that_finished_in_a_drain_under_a_lock_complete_at_the_next_start_unrun(
        huey, tmp_path, make_worker, record_file):
    # Given a worker running two jobs, and another process holding the write lock
    settings = locked_settings(tmp_path)
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    gate = tmp_path / "gate"
    first = jobs.record_then_wait("first", str(gate))
    second = jobs.record_then_wait("second", str(gate))
    db = huey.jobs.db
    wait_for(lambda: len(read_records(record_file)) == 2, message="both jobs to start")
    # When the worker drains at SIGTERM and both jobs finish while no outcome can be
    # written, then the lock is let go and a worker starts again
    code = drain_under_a_lock(worker, db.path, gate)
    assert code == 75, worker.output()
    assert "kept beside the database" in worker.output()
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))

    # Then each job ends completed with its result, as if its outcome had been written,
    # and neither ran again
    assert first.get(blocking=True, timeout=20) == "first"
    assert second.get(blocking=True, timeout=20) == "second"
    for result in (first, second):
        row = queries.get_job(db, result.id)
        assert (row.state, row.attempt, row.crashes) == ("completed", 1, 0)
    assert sorted(read_records(record_file)) == ["first", "second"]


def test_a_job_that_failed_in_a_drain_under_a_lock_retries_per_its_policy_uncharged(
        huey, tmp_path, make_worker, record_file):
    # Given a worker running a job with one retry, and another process holding the lock
    settings = locked_settings(tmp_path)
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    gate = tmp_path / "gate"
    failing = jobs.record_then_fail_at_gate("failing", str(gate))
    db = huey.jobs.db
    wait_for(lambda: read_records(record_file) == ["failing"], message="the job to start")
    # When it fails during the drain at SIGTERM, its failure unwritable, and a worker
    # starts again once the lock is let go
    code = drain_under_a_lock(worker, db.path, gate)
    assert code == 75, worker.output()
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))

    # Then the failure counts as its first attempt: it ran once more, its retry, and is
    # dead with no crash charged
    wait_for(lambda: queries.get_job(db, failing.id).state == "dead",
             message="the job to die after its retry")
    row = queries.get_job(db, failing.id)
    assert (row.attempt, row.crashes) == (2, 0)
    assert read_records(record_file) == ["failing", "failing"]
