"""Cancelling jobs from the command line: waiting at once, running ones by their worker."""

from __future__ import annotations

import pytest
from huey.exceptions import TaskException

from runner.store.sqlite import queries
from runner.store.states import JobState
from tests import jobs
from tests.conftest import read_records, wait_for
from tests.process.test_cli import cli


def test_a_waiting_job_is_cancelled_at_once_saying_by_whom(huey, settings_file):
    later = jobs.add.schedule((1, 2), delay=3600)
    done = cli(settings_file, "cancel", later.id)
    assert done.returncode == 0, done.stderr
    row = queries.get_job(huey.jobs.db, later.id)
    assert row.state == JobState.CANCELLED and row.finished_at is not None
    assert "cancelled by" in (row.reason or "") and "(cli)" in (row.reason or "")


def test_a_cancel_by_filter_names_who_asked_as_a_cancel_by_id_does(huey, settings_file):
    # Given two jobs due later, one cancelled by id
    first = jobs.add.schedule((1, 1), delay=600)
    second = jobs.add.schedule((1, 2), delay=600)
    assert cli(settings_file, "cancel", first.id[-12:]).returncode == 0
    # When the other is cancelled by a filter
    done = cli(settings_file, "cancel", "--task", "add", "--state", "scheduled")
    assert done.returncode == 0 and "cancel: 1 of 1 jobs" in done.stdout, done.stderr
    # Then both record the same user, host and front end
    reasons = [queries.get_job(huey.jobs.db, j.id).reason for j in (first, second)]
    assert reasons[0] == reasons[1] and reasons[0].endswith(" (cli)"), reasons


@pytest.mark.parametrize(("task", "trace"), [
    ("cancellable_async", "cancelled"),    # cancelled at its await
    ("cooperative_sync", "saw cancel"),    # sees current_job().cancelled and returns
    ("stubborn_sync", None),               # interrupted after the grace
    ("stubborn_async", None),              # never awaits: interrupted after the grace too
])
def test_a_running_job_is_stopped_by_its_worker_and_ends_cancelled(
        huey, make_worker, record_file, settings_file, task, trace):
    worker = make_worker()
    result = getattr(jobs, task)("x")
    wait_for(lambda: "start x" in read_records(record_file), timeout=30, message="the start")
    done = cli(settings_file, "cancel", result.id)
    assert done.returncode == 0 and "its worker stops it" in done.stdout, done.stderr
    row = wait_for(lambda: (lambda r: r if r.state == JobState.CANCELLED else None)(
        queries.get_job(huey.jobs.db, result.id)), timeout=15, message="the job cancelled")
    assert "cancelled by" in row.reason and "(cli) while running" in row.reason
    assert row.attempt == 1 and row.finished_at is not None  # not retried
    records = read_records(record_file)
    assert "end x" not in records
    if trace:
        assert f"{trace} x" in records
    # Its caller is told so, even when the task saw the cancel and returned a value.
    with pytest.raises(TaskException, match=r"JobCancelled.*\(cli\) while running"):
        result.get(blocking=True, timeout=10)
    # The worker goes on with other jobs, on the same thread pool.
    assert jobs.add(2, 3).get(blocking=True, timeout=30) == 5
    assert worker.terminate() == 0


def test_a_finished_job_cannot_be_cancelled(huey, make_worker, settings_file):
    worker = make_worker()
    result = jobs.add(1, 1)
    assert result.get(blocking=True, timeout=30) == 2
    done = cli(settings_file, "cancel", result.id)
    assert done.returncode != 0 and "completed" in done.stderr
    assert worker.terminate() == 0


def test_a_cancel_by_filter_stops_the_running_jobs_and_cancels_the_waiting_ones(
        huey, make_worker, record_file, settings_file):
    worker = make_worker()
    running = jobs.cancellable_async("x")
    wait_for(lambda: "start x" in read_records(record_file), timeout=30, message="the start")
    later = jobs.cancellable_async.schedule(("y",), delay=3600)
    done = cli(settings_file, "cancel", "--task", "cancellable_async")
    assert done.returncode == 0, done.stderr
    assert "cancel: 2 of 2 jobs" in done.stdout and "1 running" in done.stdout, done.stdout
    row = wait_for(lambda: (lambda r: r if r.state == JobState.CANCELLED else None)(
        queries.get_job(huey.jobs.db, running.id)), timeout=15, message="the job cancelled")
    assert "(cli) while running" in row.reason
    assert queries.get_job(huey.jobs.db, later.id).state == JobState.CANCELLED
    assert "cancelled x" in read_records(record_file)
    assert worker.terminate() == 0


def test_a_job_cancelled_while_claimed_ahead_ends_at_once_with_no_attempt_or_run_time(
        huey, make_worker, record_file, tmp_path):
    import datetime as dt

    from tests.conftest import run_short_jobs_first, write_settings

    settings = write_settings(tmp_path, name="one.toml",
                              worker={"max_concurrent_tasks": 1, "prefetch": 2})
    # Given one thread busy with a long job, and the next one held in its prefetch buffer
    # (claimed ahead: the jobs it ran before were short)
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    run_short_jobs_first()
    due = dt.datetime.now() + dt.timedelta(seconds=1)
    first = jobs.sleep_then_record.schedule((60, "first"), eta=due)
    held = jobs.sleep_then_record.schedule((2, "held"), eta=due)
    wait_for(lambda: huey.jobs.db.query(
        "SELECT count(*) FROM runner_job WHERE state='executing'")[0][0] == 2,
        timeout=30, message="both claimed")
    # When the held one is cancelled before it starts
    done = cli(settings, "cancel", held.id)
    assert done.returncode == 0, done.stderr
    # Then it ends cancelled while the long job still runs, not once a thread is free
    row = wait_for(lambda: (lambda r: r if r.state == JobState.CANCELLED else None)(
        queries.get_job(huey.jobs.db, held.id)), timeout=20, message="the held job cancelled")
    assert queries.get_job(huey.jobs.db, first.id).state == JobState.EXECUTING
    # having used no attempt and with no run time, as a job cancelled while waiting
    assert "before it started" in row.reason
    assert (row.attempt, row.started_at, row.duration) == (0, None, None), row
