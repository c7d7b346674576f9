"""Jobs that do not stop at their timeout (blocked in C, or catching it) never stall a worker."""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from huey.exceptions import TaskException

import runner
from runner.readmodel.health import check
from runner.settings_loader import load_settings
from runner.store.sqlite import queries
from runner.store.states import JobState
from tests import jobs
from tests.conftest import read_records, wait_for, write_settings


def state(huey, job_id):
    return queries.get_job(huey.jobs.db, job_id).state


def make_suspect(huey, make_worker, settings, record_file, task=jobs.block_in_c):
    """A job that was running when its worker was SIGKILLed (crashes = 1)."""
    suspect = task("suspect")
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: read_records(record_file) == ["suspect"], message="suspect to start")
    worker.kill()
    return suspect


def test_stuck_thread_is_written_off_and_replaced_so_the_queue_keeps_flowing(
        huey, tmp_path, make_worker, record_file):
    settings = write_settings(tmp_path, name="one.toml", worker={
        "max_concurrent_tasks": 1, "crash_limit": 1, "stuck_grace": 1})
    stuck = jobs.block_in_c("stuck")
    others = [jobs.add(i, i) for i in range(10)]
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    assert [r.get(blocking=True, timeout=20) for r in others] == [2 * i for i in range(10)]
    row = queries.get_job(huey.jobs.db, stuck.id)
    assert (row.state, row.crashes) == ("dead", 0)
    assert "did not stop" in row.error_message and "past its 1s timeout" in row.error_message
    wait_for(lambda: "written off" in worker.output(), message="the write-off in the log")
    assert worker.terminate() == 0  # the blocked thread does not hold the exit


def test_a_job_that_catches_its_timeout_is_written_off_without_blaming_a_blocking_call(
        huey, tmp_path, make_worker, record_file):
    settings = write_settings(tmp_path, name="caught.toml", worker={
        "crash_limit": 1, "stuck_grace": 0.5})
    caught = jobs.catch_timeout("caught")
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    row = wait_for(lambda: (lambda r: r if r.state == "dead" else None)(
        queries.get_job(huey.jobs.db, caught.id)), message="the write-off")
    # The worker cannot tell a call into C from code that caught the timeout: it says both
    assert "blocking call" not in row.error_message
    assert "did not stop" in row.error_message and "past its 1s timeout" in row.error_message
    assert "caught the timeout" in row.error_message


@pytest.mark.parametrize("stuck_task", [jobs.block_in_c, jobs.catch_timeout])
def test_a_stuck_job_without_retries_starts_once_and_ends_dead(
        huey, tmp_path, make_worker, record_file, stuck_task):
    # Given a task with retry_limit=0 that does not stop at its timeout, and crashes to spare
    settings = write_settings(tmp_path, name="once.toml", worker={
        "crash_limit": 3, "stuck_grace": 0.5})
    stuck = stuck_task("stuck")
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    # When its thread is written off past its timeout
    with pytest.raises(TaskException, match="JobStuck.*past its 1s timeout"):
        stuck.get(blocking=True, timeout=20)
    # Then it failed by its timeout, as its retry policy says: dead at once, no crash
    row = queries.get_job(huey.jobs.db, stuck.id)
    assert (row.state, row.attempt, row.crashes) == ("dead", 1, 0)
    assert [(e.kind, e.error_type) for e in queries.job_errors(huey.jobs.db, stuck.id)] == [
        ("timeout", "JobStuck")]
    # and it started once: the next job runs, the stuck one does not again
    assert jobs.add(1, 2).get(blocking=True, timeout=20) == 3
    assert read_records(record_file) == ["stuck"]
    assert worker.terminate() == 0


def test_a_stuck_job_is_retried_as_its_retry_limit_says_then_dead(
        huey, tmp_path, make_worker, record_file):
    settings = write_settings(tmp_path, name="retried.toml", worker={
        "crash_limit": 3, "stuck_grace": 0.5})
    stuck = jobs.block_in_c_retried("stuck")
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    with pytest.raises(TaskException, match="JobStuck"):
        stuck.get(blocking=True, timeout=30)
    # One retry (retry_limit=1), each attempt a timeout: two starts, not crash_limit's three
    row = queries.get_job(huey.jobs.db, stuck.id)
    assert (row.state, row.attempt, row.crashes) == ("dead", 2, 0)
    assert [e.kind for e in queries.job_errors(huey.jobs.db, stuck.id)] == [
        "timeout", "timeout"]
    assert read_records(record_file) == ["stuck", "stuck"]
    assert worker.terminate() == 0


def test_a_thread_written_off_after_another_returned_is_replaced_for_good(
        huey, tmp_path, make_worker, record_file):
    # A job stuck in C is written off and its thread replaced; the call returns and that
    # thread ends. A second stuck job is written off later: its replacement is a new
    # thread, which the system may give the first one's ident. It runs the next jobs.
    settings = write_settings(tmp_path, name="back.toml", worker={
        "max_concurrent_tasks": 1, "crash_limit": 1, "stuck_grace": 0.5})
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    for n in (1, 2):
        stuck = jobs.block_in_c(f"stuck {n}", 2.5)
        wait_for(lambda n=n: worker.output().count("timed out after 1.0s") == n, timeout=20,
                 message=f"blocking call {n} to return")
        assert state(huey, stuck.id) == "dead"
    later = [jobs.add(i, 10) for i in range(4)]
    assert [r.get(blocking=True, timeout=20) for r in later] == [i + 10 for i in range(4)]
    assert "died, restarting" not in worker.output()
    assert worker.terminate() == 0


def test_stuck_suspect_running_alone_does_not_block_the_other_jobs(
        huey, tmp_path, make_worker, record_file):
    settings = write_settings(tmp_path, name="two.toml", worker={
        "max_concurrent_tasks": 2, "crash_limit": 3, "stuck_grace": 1})
    suspect = make_suspect(huey, make_worker, settings, record_file)
    others = [jobs.add(i, 1) for i in range(20)]
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    assert [r.get(blocking=True, timeout=30) for r in others] == [i + 1 for i in range(20)]
    wait_for(lambda: state(huey, suspect.id) == "dead", timeout=30,
             message="the stuck suspect to be buried")
    # Its worker's death was a crash; stuck past its timeout, it failed by it, and with
    # retry_limit=0 that ends it: it does not run again up to crash_limit
    row = queries.get_job(huey.jobs.db, suspect.id)
    assert row.crashes == 1
    kinds = [e.kind for e in queries.job_errors(huey.jobs.db, suspect.id)]
    assert kinds == ["crash", "timeout"]


def test_suspect_without_timeout_runs_alone_only_up_to_isolation_limit(
        huey, tmp_path, make_worker, record_file):
    settings = write_settings(tmp_path, name="iso.toml", worker={
        "max_concurrent_tasks": 2, "isolation_limit": 1})
    suspect = make_suspect(huey, make_worker, settings, record_file, task=jobs.block_untimed)
    others = [jobs.add(i, 2) for i in range(5)]
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    assert [r.get(blocking=True, timeout=20) for r in others] == [i + 2 for i in range(5)]
    assert state(huey, suspect.id) == "executing"  # long, not stuck: it keeps running


def test_a_cancelled_job_stuck_in_c_ends_cancelled_and_never_runs_again(
        huey, tmp_path, make_worker, record_file):
    # Given a running job blocked in C, cancelled: its worker cannot stop it
    settings = write_settings(tmp_path, name="cancel.toml", worker={
        "crash_limit": 3, "stuck_grace": 0.5})
    stuck = jobs.block_in_c("stuck")
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: read_records(record_file) == ["stuck"], message="the job to start")
    assert runner.cancel(stuck.id) == JobState.EXECUTING
    # When its thread is written off past its timeout
    row = wait_for(lambda: (lambda r: r if r.state != "executing" else None)(
        queries.get_job(huey.jobs.db, stuck.id)), message="the write-off")
    # Then the cancel is final: cancelled for the reason the cancel gave, no crash charged
    assert (row.state, row.attempt, row.crashes) == ("cancelled", 1, 0)
    assert row.reason.startswith("cancelled by ") and row.reason.endswith(" while running")
    with pytest.raises(TaskException, match=r"JobCancelled.*while running"):
        stuck.get(blocking=True, timeout=10)
    # and it never starts again: the next job runs, the cancelled one does not
    assert jobs.add(1, 2).get(blocking=True, timeout=20) == 3
    assert read_records(record_file) == ["stuck"]
    assert "written off" in worker.output()


def test_a_suspect_past_its_isolation_limit_does_not_hold_the_worker_for_the_next_suspect(
        huey, tmp_path, make_worker, record_file):
    # Given two long jobs that were running when their worker was SIGKILLed: two suspects
    settings = write_settings(tmp_path, name="two.toml", worker={
        "max_concurrent_tasks": 4, "isolation_limit": 1})
    gate = tmp_path / "gate"
    suspects = [jobs.record_then_wait(label, str(gate)) for label in ("x", "y")]
    first = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: sorted(read_records(record_file)) == ["x", "y"], message="both to start")
    first.kill()
    # When a new worker starts, runs one suspect alone, and quick jobs are enqueued
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: len(read_records(record_file)) == 3, message="a suspect to run alone")
    others = [jobs.add(i, 3) for i in range(5)]
    # Then once that suspect has run alone for isolation_limit, the quick jobs run beside
    # it: waiting for the second suspect's turn does not hold them back
    assert [r.get(blocking=True, timeout=20) for r in others] == [i + 3 for i in range(5)]
    # and the second suspect is not run beside the first: it waits for its turn alone
    assert len(read_records(record_file)) == 3
    gate.touch()
    wait_for(lambda: sorted(read_records(record_file)[2:]) == ["x", "y"],
             message="the second suspect to run once the first ended")
    wait_for(lambda: all(state(huey, s.id) == "completed" for s in suspects),
             message="both suspects to complete")


def test_health_reports_a_job_past_its_timeout_and_sigterm_fails_it_by_its_timeout(
        huey, tmp_path, make_worker, record_file):
    settings_path = write_settings(tmp_path, name="health.toml", worker={
        "stuck_grace": 600, "shutdown_timeout": 0.5})
    settings = load_settings(settings_path, environ={})
    suspect = make_suspect(huey, make_worker, settings_path, record_file)
    worker = make_worker(settings=settings_path, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: read_records(record_file) == ["suspect", "suspect"],
             message="suspect to start again")
    report = wait_for(lambda: (lambda r: r if not r.ok else None)(
        check(huey.jobs.store, settings)), message="health to report the overrun")
    assert "past its 1s timeout" in report.reason and suspect.id in report.reason
    assert "claims nothing else" in report.reason
    # and which worker: its id holds its pid
    assert f":{worker.proc.pid}:" in report.reason.rsplit("(worker ", 1)[-1], report.reason
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    row = queries.get_job(huey.jobs.db, suspect.id)
    # Not handed back to be claimed alone again for ever: the stuck attempt failed by its
    # timeout, and with retry_limit=0 the job is dead (its worker's death the one crash).
    assert (row.state, row.crashes) == ("dead", 1)
    assert [e.kind for e in queries.job_errors(huey.jobs.db, suspect.id)] == [
        "crash", "timeout"]


#: Heartbeats far apart: what happens at a job's timeout cannot wait for the next one.
SLOW_BEATS = {"heartbeat_interval": 30, "lease_seconds": 120, "shutdown_timeout": 0.5}


def past_timeout(text: str) -> int:
    """The seconds past its 1s timeout that ``text`` says a job is."""
    found = re.search(r"(\d+)s past its 1s timeout", text)
    assert found, text
    return int(found.group(1))


def test_a_stuck_thread_is_written_off_at_timeout_plus_grace_not_at_the_next_heartbeat(
        huey, tmp_path, make_worker, record_file):
    # Given a worker whose heartbeats are 30s apart, with a 1s grace past a timeout
    settings = write_settings(tmp_path, name="grace.toml", worker={
        **SLOW_BEATS, "max_concurrent_tasks": 1, "crash_limit": 1, "stuck_grace": 1})
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    # When a job blocks in C past its 1s timeout
    stuck = jobs.block_in_c("stuck", 60)
    wait_for(lambda: state(huey, stuck.id) == "dead", timeout=40, message="the write-off")
    # Then its thread was written off 1s past its timeout, not at the next heartbeat
    assert past_timeout(queries.get_job(huey.jobs.db, stuck.id).error_message) <= 2
    assert worker.terminate() == 0


def test_health_fails_as_a_job_passes_its_timeout_and_counts_the_seconds_since(
        huey, tmp_path, make_worker, record_file):
    # Given a worker whose heartbeats are 30s apart
    settings_path = write_settings(tmp_path, name="late.toml", worker={
        **SLOW_BEATS, "stuck_grace": 600})
    settings = load_settings(settings_path, environ={})
    worker = make_worker(settings=settings_path, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: check(huey.jobs.store, settings).ok, message="a healthy worker")
    # When a job blocks in C past its 1s timeout
    stuck = jobs.block_in_c("late", 20)
    wait_for(lambda: read_records(record_file) == ["late"], message="the job to start")

    def failing() -> str | None:
        report = check(huey.jobs.store, settings)
        return None if report.ok else report.reason

    # Then health fails from the moment the timeout passes, not at the next heartbeat
    reason = wait_for(failing, timeout=40, message="health to report the overrun")
    assert stuck.id in reason and past_timeout(reason) <= 3, reason
    # And the seconds past it are counted when health reads them, not when a beat wrote them
    first = past_timeout(reason)
    wait_for(lambda: past_timeout(failing() or "") >= first + 2, timeout=20,
             message="the seconds past the timeout to grow between heartbeats")
    assert worker.terminate() == 0


def test_worker_exits_87_for_a_restart_once_more_threads_are_stuck_than_it_runs(
        huey, tmp_path, make_worker, record_file):
    settings = write_settings(tmp_path, name="restart.toml", worker={
        "max_concurrent_tasks": 1, "crash_limit": 0, "stuck_grace": 0.5,
        "shutdown_timeout": 0.5})  # the drain waits on a thread that never returns
    stuck = jobs.block_in_c_retried("stuck")
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    assert worker.wait(30) == 87, worker.output()
    assert read_records(record_file) == ["stuck", "stuck"]  # written off twice, then the exit
    row = queries.get_job(huey.jobs.db, stuck.id)
    assert (row.state, row.attempt, row.crashes) == ("dead", 2, 0)
    assert "draining and exiting (code 87)" in worker.output()


def _stopped(pid: int) -> bool:
    # The state is the field after the command, which may hold spaces and parentheses.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] in "Tt"


def stop_outside_a_write(proc, db_path) -> None:
    """SIGSTOP ``proc`` at a moment it holds no write lock on ``db_path``.

    A worker stopped inside a write transaction (a heartbeat, an upkeep) keeps the
    lock for as long as it stays stopped: every other process's writes wait for it
    and give up. A stall that holds the lock is another scenario; this one stalls
    the worker between writes, so it is stopped again until the lock is seen free.
    """
    deadline = time.monotonic() + 20
    while True:
        proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: _stopped(proc.pid), message="the worker to stop")
        probe = sqlite3.connect(db_path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
        finally:
            probe.close()
        proc.send_signal(signal.SIGCONT)
        wait_for(lambda: not _stopped(proc.pid), message="the worker to go on")


def taken_over(huey, tmp_path, make_worker, record_file, label: str, *, open_gate: bool):
    """A job whose first attempt runs on a worker that then stalls (SIGSTOP) past its
    lease while a second worker takes the job over and completes it; the first worker
    woken (SIGCONT), its attempt let go on (``open_gate``) or still held at the gate.
    Returns (job, stalled worker, gate)."""
    gate = tmp_path / "gate"
    job = jobs.first_attempt_fails_late(label, str(gate))
    stalled = make_worker(settings=write_settings(tmp_path, name="a.toml"),
                          TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: read_records(record_file) == [f"{label} 1"], message="the first attempt")
    stop_outside_a_write(stalled.proc, huey.jobs.db.path)
    try:
        make_worker(settings=write_settings(tmp_path, name="b.toml"),
                    TEST_RECORD_FILE=str(record_file))
        wait_for(lambda: state(huey, job.id) == "completed", timeout=30,
                 message="the second worker to complete the job")
    finally:
        if open_gate:
            gate.touch()
        stalled.proc.send_signal(signal.SIGCONT)
    return job, stalled, gate


def test_a_worker_that_stalled_past_its_lease_cannot_undo_the_attempt_that_replaced_it(
        huey, tmp_path, make_worker, record_file):
    # Given a job taken over from a worker that stalled past its lease, When the stalled
    # worker wakes up and its first attempt fails, late
    job, stalled, _ = taken_over(huey, tmp_path, make_worker, record_file, "late",
                                 open_gate=True)
    wait_for(lambda: "the first attempt fails, late" in stalled.output(), timeout=30,
             message="the late failure in the stalled worker's log")
    assert stalled.terminate() == 0, stalled.output()
    # Then the job stays completed by the attempt that replaced it, and runs no third time
    row = queries.get_job(huey.jobs.db, job.id)
    assert (row.state, row.attempt) == ("completed", 2)
    assert job.get(blocking=True, timeout=5) == "attempt 2"
    assert read_records(record_file) == ["late 1", "late 2"]


def test_a_worker_that_finds_its_lease_taken_says_so_naming_the_job_and_what_follows(
        huey, tmp_path, make_worker, record_file):
    # Given a job taken over from a worker that stalled past its lease
    job, stalled, gate = taken_over(huey, tmp_path, make_worker, record_file, "taken",
                                    open_gate=False)
    # When the first worker wakes up, its attempt still running
    try:
        line = wait_for(lambda: next((x for x in stalled.output().splitlines()
                                      if "lost the lease" in x), None), timeout=30,
                        message="the lost lease in the stalled worker's log")
    finally:
        gate.touch()
    # Then it warns once, naming the job, its task, who took it and what follows
    assert "WARNING" in line and job.id in line and "first_attempt_fails_late" in line, line
    assert "attempt 1" in line and "attempt 2 of it ran since and left it completed" in line
    assert "its outcome will not be written" in line, line
    assert stalled.terminate() == 0, stalled.output()
    assert stalled.output().count("lost the lease") == 1


def test_a_write_lock_held_past_the_lease_does_not_make_a_live_worker_dead(
        huey, tmp_path, make_worker, record_file):
    # Given two workers of one file, one running a job, and a lease of 2 s
    settings = write_settings(tmp_path, worker={"lease_seconds": 2})
    for _ in range(2):
        make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: len(queries.list_workers(huey.jobs.db)) == 2,
             message="both workers to register")
    slow = jobs.sleep_then_record(8, "slow")
    wait_for(lambda: state(huey, slow.id) == "executing", message="the job to start")
    # When another process holds the write lock for longer than the lease
    locker = sqlite3.connect(huey.jobs.db.path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        # Held until the job's lease, frozen by the lock, has lapsed by a heartbeat more
        (lease,), = locker.execute("SELECT lease_expires_at FROM runner_job WHERE id = ?",
                                   (slow.id,)).fetchall()
        wait_for(lambda: time.time() > lease + 0.5, message="the lease to lapse")
        locker.execute("COMMIT")
    finally:
        locker.close()
    # Then the job runs once, to the end, and no worker is declared dead
    wait_for(lambda: state(huey, slow.id) == "completed", timeout=30,
             message="the job to complete")
    row = queries.get_job(huey.jobs.db, slow.id)
    assert (row.attempt, row.crashes) == (1, 0)
    assert read_records(record_file) == ["slow"]
