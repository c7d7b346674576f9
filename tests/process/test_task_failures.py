"""Tasks that fail in unusual ways end in their documented state, and the worker goes on."""

from __future__ import annotations

from runner.store.sqlite import queries
from tests import jobs
from tests.conftest import read_records, wait_for, write_settings


def finished(huey, job_id):
    row = queries.get_job(huey.jobs.db, job_id)
    return row if row.state in ("completed", "dead", "cancelled") else None


def test_sys_exit_keyboard_interrupt_and_other_base_exceptions_fail_the_attempt(
        huey, make_worker, tmp_path, record_file):
    # One thread: a job that killed it would leave the next job waiting for a new one.
    worker = make_worker(settings=write_settings(
        tmp_path, worker={"max_concurrent_tasks": 1}, name="one-thread.toml"))
    calls = {
        "SystemExit: 3": jobs.leaves_the_attempt("sys.exit"),
        "KeyboardInterrupt": jobs.leaves_the_attempt("KeyboardInterrupt"),
        "EscapesExceptionHandlers: past every except Exception":
            jobs.leaves_the_attempt("other"),
        "SystemExit: 4": jobs.async_leaves_the_attempt("sys.exit"),
        "CancelledError": jobs.async_leaves_the_attempt("cancel"),
    }
    for text, result in calls.items():
        row = wait_for(lambda result=result: finished(huey, result.id), timeout=30,
                       message=f"the job raising {text} to finish")
        # Retried per its policy (retry_limit=1), then dead with a reason that names it.
        assert (row.state, row.attempt) == ("dead", 2), (text, row)
        assert row.error_type == "TaskAborted" and text in row.reason, (text, row.reason)
        errors = queries.job_errors(huey.jobs.db, result.id)
        assert [e.kind for e in errors] == ["error", "error"]
    records = read_records(record_file)
    for how in ("sys.exit", "KeyboardInterrupt", "other", "async sys.exit", "async cancel"):
        assert records.count(f"{how} runs") == 2, records
    assert jobs.add(2, 3).get(blocking=True, timeout=30) == 5
    assert worker.terminate() == 0
    assert "died" not in worker.output()


def test_tasks_an_async_job_leaves_running_end_with_it_not_inside_the_next_job(
        huey, make_worker, tmp_path, record_file):
    # One thread, so the next job runs on the same event loop.
    worker = make_worker(settings=write_settings(
        tmp_path, worker={"max_concurrent_tasks": 1}, name="one-thread.toml"))
    first = jobs.leaves_a_task_running("first")
    second = jobs.awaits_a_while("second", 1.5)  # longer than the left task's own sleep
    assert first.get(blocking=True, timeout=30) == "returned"
    assert second.get(blocking=True, timeout=30) == "second"
    records = read_records(record_file)
    assert "first background cancelled" in records, records
    assert "first background ran" not in records, records
    # Cancelled as the first job ended, before the second began.
    assert records.index("first background cancelled") < records.index(
        f"second start {second.id}")
    assert worker.terminate() == 0


def test_an_async_task_that_never_awaits_times_out_like_a_plain_function(
        huey, make_worker, tmp_path, record_file):
    # A long stuck_grace: only the timeout itself can end the attempt within the test.
    worker = make_worker(settings=write_settings(
        tmp_path, worker={"stuck_grace": 120}, name="patient.toml"))
    result = jobs.spins_past_its_timeout("spin")
    row = wait_for(lambda: finished(huey, result.id), timeout=20,
                   message="the spinning job to time out")
    assert (row.state, row.attempt, row.crashes) == ("dead", 1, 0), row
    assert row.error_type == "TaskTimeout" and row.reason == "timeout: timeout 1s"
    assert [e.kind for e in queries.job_errors(huey.jobs.db, result.id)] == ["timeout"]
    assert read_records(record_file) == ["start spin"]
    assert jobs.async_add(2, 3).get(blocking=True, timeout=30) == 5
    assert worker.terminate() == 0
    assert "written off" not in worker.output()


def test_an_outcome_that_cannot_be_recorded_uses_the_retry_limit_then_is_dead(
        huey, make_worker, record_file):
    worker = make_worker()
    # The next step's concurrency key is read from a dict; the first step returns an int.
    first, _ = huey.enqueue(jobs.hands_on_a_number.s("first").then(jobs.per_order))
    row = wait_for(lambda: finished(huey, first.id), timeout=30,
                   message="the first step to finish")
    assert (row.state, row.attempt) == ("dead", 2), row
    assert row.reason.startswith("outcome not recorded: TypeError"), row.reason
    # Run again once (retry_limit=1), not at every later attempt without end.
    assert read_records(record_file) == ["first runs", "first runs"]
    assert worker.terminate() == 0


def test_on_failure_hears_of_a_job_dead_because_its_worker_died(
        huey, make_worker, tmp_path, record_file):
    settings = write_settings(tmp_path, worker={"crash_limit": 1}, name="crash-once.toml")
    result = jobs.kills_its_worker("crash")
    assert make_worker(settings=settings).wait(30) == 1
    worker = make_worker(settings=settings)  # recovers the job: dead at its first crash
    wait_for(lambda: "fallback kills_its_worker WorkerDied ('crash',)" in read_records(
        record_file), timeout=30, message="the on_failure of the dead job")
    row = queries.get_job(huey.jobs.db, result.id)
    assert (row.state, row.crashes) == ("dead", 1)
    assert read_records(record_file).count("crash runs") == 1
    assert worker.terminate() == 0


def test_on_failure_hears_of_a_job_dead_because_it_was_stuck(
        huey, make_worker, tmp_path, record_file):
    worker = make_worker(settings=write_settings(
        tmp_path, worker={"stuck_grace": 1}, name="stuck-once.toml"))
    result = jobs.stuck_with_a_fallback("stuck")
    wait_for(lambda: "fallback stuck_with_a_fallback JobStuck ('stuck',)" in read_records(
        record_file), timeout=30, message="the on_failure of the stuck job")
    assert queries.get_job(huey.jobs.db, result.id).state == "dead"
    assert worker.terminate() == 0
