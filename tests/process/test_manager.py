"""A real run.py subprocess: draining on SIGTERM, poison jobs, start-up recovery."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from huey.exceptions import TaskException

from runner import enqueue_many
from runner.store.sqlite import queries
from tests import jobs
from tests.conftest import read_records, run_short_jobs_first, wait_for, write_settings


def states(huey, ids):
    return [queries.get_job(huey.jobs.db, i).state for i in ids]


def test_worker_runs_enqueued_jobs_and_sigterm_exits_0(huey, make_worker):
    worker = make_worker()
    results = [jobs.add(i, i) for i in range(20)]
    assert [r.get(blocking=True, timeout=15) for r in results] == [2 * i for i in range(20)]
    assert worker.terminate() == 0
    assert queries.list_workers(huey.jobs.db, include_stopped=True)[0].state == "stopped"


def test_sigterm_waits_for_running_jobs_within_shutdown_timeout(huey, make_worker, record_file):
    worker = make_worker(TEST_RECORD_FILE=str(record_file))
    running = jobs.sleep_then_record(1.0, "finished")
    waiting = [jobs.add(1, 1) for _ in range(3)]
    wait_for(lambda: states(huey, [running.id]) == ["executing"], message="job to start")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert read_records(record_file) == ["finished"]
    assert states(huey, [running.id]) == ["completed"]
    # Jobs that never started stay (or go back to) waiting; none is lost.
    assert all(s in ("available", "completed") for s in states(huey, [r.id for r in waiting]))


def test_sigint_drains_running_jobs_like_sigterm(huey, make_worker, record_file):
    # Ctrl-C on a foreground `python run.py` must drain, not interrupt the job.
    worker = make_worker(TEST_RECORD_FILE=str(record_file))
    running = jobs.sleep_then_record(1.0, "finished")
    wait_for(lambda: states(huey, [running.id]) == ["executing"], message="job to start")
    worker.proc.send_signal(signal.SIGINT)
    assert worker.wait(15) == 0
    assert read_records(record_file) == ["finished"]
    assert states(huey, [running.id]) == ["completed"]
    assert "stopping: draining 1 jobs" in worker.output()


def test_job_still_running_after_shutdown_timeout_is_handed_back(huey, tmp_path, make_worker):
    settings = write_settings(tmp_path, worker={"shutdown_timeout": 0.5})
    worker = make_worker(settings=settings)
    slow = jobs.sleep_then_record(30, "never")
    wait_for(lambda: states(huey, [slow.id]) == ["executing"], message="job to start")
    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert time.monotonic() - started < 10
    row = queries.get_job(huey.jobs.db, slow.id)
    assert (row.state, row.attempt) == ("available", 0)  # handed back: no attempt used


def test_shutdown_log_tells_jobs_handed_back_from_jobs_cancelled_as_asked(
        huey, tmp_path, make_worker, record_file, settings_file):
    from tests.process.test_cli import cli

    # Given three jobs running past the shutdown timeout, one of them asked to cancel
    # (it does not return in the grace: sleeping in one call, it cannot be interrupted)
    settings = write_settings(tmp_path, worker={"shutdown_timeout": 0.5,
                                                "max_concurrent_tasks": 3})
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    running = [jobs.record_then_sleep(f"started {i}", 60) for i in range(3)]
    wait_for(lambda: len(read_records(record_file)) == 3, message="jobs to start")
    done = cli(settings, "cancel", running[0].id)
    assert done.returncode == 0 and "its worker stops it" in done.stdout, done.stderr
    # When the worker stops before any of them ends
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    # Then the cancelled one ends cancelled, the others wait again, and the log tells them apart
    assert states(huey, [r.id for r in running]) == ["cancelled", "available", "available"]
    output = worker.output()
    assert "handed back 2 jobs still running; cancelled 1 as asked" in output, output


def test_jobs_handed_back_at_shutdown_read_as_not_yet_tried_and_run_as_their_first_attempt(
        huey, tmp_path, make_worker, record_file):
    from tests.process.test_cli import cli

    # Given a worker of one thread running a job past its shutdown_timeout, with two more
    # claimed ahead of the thread (not started: its jobs so far were short)
    settings = write_settings(tmp_path, worker={"shutdown_timeout": 0.5,
                                                "max_concurrent_tasks": 1, "prefetch": 2})
    gate = tmp_path / "gate"
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    run_short_jobs_first()
    running, *waiting = enqueue_many([
        jobs.record_then_wait.s("started", str(gate)),  # 3 retries: 4 attempts allowed
        *(jobs.add.s(i, i) for i in range(2))])  # 1 attempt allowed
    wait_for(lambda: read_records(record_file) == ["started"], message="job to start")
    assert states(huey, [w.id for w in waiting]) == ["executing"] * 2
    # When it stops: the running job is interrupted and handed back, the others unclaimed
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    # Then none of them reads as a used attempt
    for job_id in (running.id, *(w.id for w in waiting)):
        row = queries.get_job(huey.jobs.db, job_id)
        assert (row.state, row.attempt) == ("available", 0), row
    assert "attempt: 0 of 4" in cli(settings, "show", running.id).stdout
    listing = cli(settings, "jobs").stdout
    assert "0/4" in listing and listing.count("0/1") == 2, listing
    # And the next run of the handed-back job is its first attempt
    gate.touch()
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: states(huey, [running.id]) == ["completed"], message="job to run again")
    assert queries.get_job(huey.jobs.db, running.id).attempt == 1
    assert "attempt: 1 of 4" in cli(settings, "show", running.id).stdout


def test_killed_worker_job_runs_again_at_next_start(huey, make_worker, record_file):
    worker = make_worker(TEST_RECORD_FILE=str(record_file))
    slow = jobs.record_then_sleep("started", 2.0)
    wait_for(lambda: read_records(record_file) == ["started"], message="job to start")
    worker.kill()
    assert states(huey, [slow.id]) == ["executing"]
    make_worker(TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: states(huey, [slow.id]) == ["completed"], message="job to finish")
    assert read_records(record_file) == ["started", "started"]
    row = queries.get_job(huey.jobs.db, slow.id)
    assert (row.attempt, row.crashes) == (2, 1)
    assert [e.kind for e in queries.job_errors(huey.jobs.db, slow.id)] == ["crash"]


def restore(backup, path) -> None:
    """What the README says: move the file and its -wal/-shm aside, put the copy in place."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.replace(f"{path}{suffix}", f"{path}.aside{suffix}")
    os.replace(backup, path)


def test_a_file_restored_under_a_live_worker_runs_again_uncharged_the_jobs_it_finished_since(
        huey, tmp_path, make_worker, record_file):
    # Given a worker that buries a job at its first crash, running two jobs
    settings = write_settings(tmp_path, name="restore.toml", worker={"crash_limit": 1})
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    db = huey.jobs.db
    done_gate, running_gate = tmp_path / "done.gate", tmp_path / "running.gate"
    done = jobs.record_then_wait("done", str(done_gate))
    running = jobs.record_then_wait("running", str(running_gate))
    wait_for(lambda: sorted(read_records(record_file)) == ["done", "running"],
             message="both jobs to start")
    # And a backup taken while both run, after which one of them completes
    backup = tmp_path / "backup.db"
    with sqlite3.connect(db.path) as source, sqlite3.connect(backup) as target:
        source.backup(target)
    done_gate.touch()
    wait_for(lambda: states(huey, [done.id]) == ["completed"], message="the first job to end")

    # When the backup is restored while the worker runs on
    restore(backup, db.path)

    # Then the job it finished since (executing, leased to it, in the copy) runs again,
    # charged no crash, and the one it still runs ends once, in the restored file
    running_gate.touch()

    def settled() -> list[str] | None:
        db.refresh()
        now = states(huey, [done.id, running.id])
        return now if not {"executing", "available"} & set(now) else None

    assert wait_for(settled, timeout=60, message="both jobs to settle") == [
        "completed", "completed"]
    for result in (done, running):
        row = queries.get_job(db, result.id)
        assert (row.attempt, row.crashes) == (1, 0), (row.state, row.reason)
        assert queries.job_errors(db, result.id) == []
    assert sorted(read_records(record_file)) == ["done", "done", "running"]


def test_poison_job_is_dead_after_three_crashes_while_others_keep_flowing(huey, make_worker):
    poison = jobs.crash_worker()
    others = [jobs.add(i, 1) for i in range(30)]
    deaths = 0
    deadline = time.monotonic() + 60
    while states(huey, [poison.id]) != ["dead"] and time.monotonic() < deadline:
        worker = make_worker()
        code = worker.wait(30)
        assert code == 1, worker.output()
        deaths += 1
        if deaths >= 3:
            break
    # The next worker finds the third death at start-up and buries the job.
    worker = make_worker()
    wait_for(lambda: states(huey, [poison.id]) == ["dead"], message="poison job to be dead")
    wait_for(lambda: all(s == "completed" for s in states(huey, [r.id for r in others])),
             message="other jobs to complete")
    row = queries.get_job(huey.jobs.db, poison.id)
    assert row.crashes == 3 and "worker died" in row.reason
    assert worker.terminate() == 0


def test_bad_settings_exit_78_naming_the_key(tmp_path, make_worker):
    cases = {
        "syntax": ("[worker\nmax_concurrent_tasks = 2\n", "TOML syntax error"),
        "unknown": ("[worker]\nmax_concurent_tasks = 2\n", "unknown key 'max_concurent_tasks'"),
        "type": ("[worker]\nretry_limit = \"three\"\n", "retry_limit: expected a whole number"),
        "value": ("[database]\nsynchronous = \"SOMETIMES\"\n", "synchronous"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        worker = make_worker(settings=path)
        assert worker.wait(20) == 78, name
        output = worker.output()
        assert expected in output and str(path.name) in output, output


def test_unimportable_task_module_exits_78(tmp_path, make_worker):
    path = tmp_path / "bad_imports.toml"
    path.write_text('[runner]\nimports = ["tests.no_such_module"]\n')
    worker = make_worker(settings=path)
    assert worker.wait(20) == 78
    assert "tests.no_such_module" in worker.output()


def test_a_task_module_that_raises_at_import_is_shown_where_it_failed(tmp_path, make_worker):
    (tmp_path / "failing_tasks.py").write_text(
        "def load_config():\n    raise RuntimeError('config missing')\n\n\nload_config()\n")
    path = tmp_path / "failing.toml"
    path.write_text('[runner]\nimports = ["failing_tasks"]\n')
    worker = make_worker(settings=path)
    assert worker.wait(20) == 78
    output = worker.output()
    summary = ("[runner] imports: cannot import task module 'failing_tasks': RuntimeError: "
               "config missing")
    # The one line as before, then the module's own frames (not the runner's import code)
    assert output.startswith(f"run.py: {summary}\n    | Traceback"), output
    module = tmp_path / "failing_tasks.py"
    assert f'    |   File "{module}", line 5, in <module>' in output, output
    assert f'    |   File "{module}", line 2, in load_config' in output, output
    assert "importlib" not in output and "registry.py" not in output, output
    log = (tmp_path / "worker.log").read_text()
    assert summary in log and f'File "{module}", line 2, in load_config' in log, log


def test_corrupt_database_exits_65_and_uncreatable_exits_73(tmp_path, make_worker):
    (tmp_path / "garbage.db").write_bytes(b"this is not a database" * 100)
    worker = make_worker("--database", str(tmp_path / "garbage.db"))
    assert worker.wait(20) == 65, worker.output()
    (tmp_path / "file").write_text("")
    worker = make_worker("--database", str(tmp_path / "file" / "sub" / "jobs.db"))
    assert worker.wait(20) == 73, worker.output()


def test_environment_overrides_concurrency(tmp_path, make_worker, huey):
    worker = make_worker(WORKER_CONCURRENCY="2")
    wait_for(lambda: queries.list_workers(huey.jobs.db), message="worker to register")
    assert queries.list_workers(huey.jobs.db)[0].concurrency == 2
    assert worker.terminate() == 0


def test_two_workers_share_one_database_and_run_each_job_once(huey, make_worker, record_file):
    first = make_worker(TEST_RECORD_FILE=str(record_file))
    second = make_worker(TEST_RECORD_FILE=str(record_file))
    results = [jobs.record_run(f"job{i}") for i in range(300)]
    wait_for(lambda: len(read_records(record_file)) >= 300, timeout=60,
             message="every job to run")
    assert first.terminate() == 0 and second.terminate() == 0
    labels = [line.split()[0] for line in read_records(record_file)]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    assert not twice, (twice, [queries.get_job(huey.jobs.db, r.id) for r in results
                               if f"job{results.index(r)}" in twice])
    assert sorted(labels) == sorted(f"job{i}" for i in range(300))
    states = {queries.get_job(huey.jobs.db, r.id).state for r in results}
    assert states == {"completed"}


@pytest.mark.parametrize("short_first", [False, True], ids=["idle", "after-short-jobs"])
def test_two_workers_share_long_jobs_rather_than_one_claiming_them_ahead(
        huey, tmp_path, make_worker, record_file, short_first):
    # Given two workers of 4 threads each (prefetch 4 by default), idle, or having just run
    # short jobs (so they claim ahead: their jobs so far were short)
    settings = write_settings(tmp_path, worker={"max_concurrent_tasks": 4})
    workers = [make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
               for _ in range(2)]
    wait_for(lambda: len(queries.list_workers(huey.jobs.db)) == 2, message="both to register")
    if short_first:
        run_short_jobs_first(300)
    gate = tmp_path / "gate"
    try:
        # When 8 long jobs arrive at once
        batch = jobs.record_then_wait.map([(f"L{i}", str(gate)) for i in range(8)])
        # Then all 8 run at once, 4 on each worker: none waits behind a busy thread (one a
        # worker claimed ahead goes back to the queue for the other)
        wait_for(lambda: len(read_records(record_file)) == 8, timeout=30,
                 message="all 8 jobs to start while the first ones still run")
        owners = huey.jobs.db.query("SELECT lease_owner, count(*) FROM runner_job "
                                    "WHERE state = 'executing' GROUP BY lease_owner")
        assert sorted(n for _, n in owners) == [4, 4], owners
    finally:
        gate.touch()
    assert batch is not None and batch.get(blocking=True, timeout=30) == [
        f"L{i}" for i in range(8)]
    # having used one attempt each: going back unstarted is not charged
    assert {queries.get_job(huey.jobs.db, r.id).attempt for r in batch} == {1}
    assert all(w.terminate() == 0 for w in workers)


def test_a_draining_worker_hands_back_its_jobs_claimed_ahead_at_once(
        huey, tmp_path, make_worker, record_file):
    # Given a worker of one thread that claims ahead (its jobs so far were short), running a
    # long job with two more claimed ahead of its thread
    settings = write_settings(tmp_path, worker={"max_concurrent_tasks": 1, "prefetch": 2,
                                                "shutdown_timeout": 60})
    first = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    run_short_jobs_first()
    gate = tmp_path / "gate"
    try:
        running, *ahead = enqueue_many([jobs.record_then_wait.s("running", str(gate)),
                                        jobs.record_run.s("ahead 0"),
                                        jobs.record_run.s("ahead 1")])
        wait_for(lambda: read_records(record_file) == ["running"], message="the long job to start")
        assert states(huey, [running.id, *(a.id for a in ahead)]) == ["executing"] * 3
        # When it is told to stop while its long job runs
        first.proc.send_signal(signal.SIGTERM)
        # Then the two claimed ahead go back to the queue as the drain begins, and a worker
        # started meanwhile runs them before the long job ends (not once the drain is over)
        wait_for(lambda: states(huey, [a.id for a in ahead]) == ["available"] * 2,
                 message="the jobs claimed ahead to be handed back")
        second = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
        wait_for(lambda: states(huey, [a.id for a in ahead]) == ["completed"] * 2, timeout=30,
                 message="the jobs claimed ahead to run on the other worker")
        assert states(huey, [running.id]) == ["executing"] and first.proc.poll() is None
    finally:
        gate.touch()
    assert first.wait(30) == 0
    assert states(huey, [running.id]) == ["completed"]
    output = first.output()
    assert "handed back 2 claimed jobs that had not started" in output, output
    assert output.index("handed back 2 claimed") < output.index(": stopped")
    assert second.terminate() == 0


def test_sigterm_right_after_start_drains_to_exit_0_and_logs_the_stop(huey, tmp_path,
                                                                     make_worker):
    # The signal lands while run.py is still importing, then while the worker opens
    # its database: each start must drain and exit 0, never die with 143. The
    # delays count from the moment a bare interpreter is up on this machine now.
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    interpreter = time.monotonic() - started
    for delay in (0.1, 0.25):
        worker = make_worker()
        time.sleep(interpreter + delay)  # places the signal; nothing is awaited
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0, (delay, worker.output())
    log = (tmp_path / "worker.log").read_text()
    assert "stopping: draining 0 jobs (shutdown_timeout 5s)" in log
    assert log.count(": stopped") >= 1


def test_stop_is_logged_with_the_jobs_it_drains(huey, tmp_path, make_worker, record_file):
    worker = make_worker(TEST_RECORD_FILE=str(record_file))
    running = jobs.sleep_then_record(0.5, "finished")
    wait_for(lambda: states(huey, [running.id]) == ["executing"], message="job to start")
    assert worker.terminate() == 0
    log = (tmp_path / "worker.log").read_text()
    assert "stopping: draining 1 jobs (shutdown_timeout 5s)" in log
    assert log.index("stopping: draining") < log.index(": stopped")


def test_result_get_waits_for_the_outcome_of_the_last_attempt(huey, tmp_path, make_worker):
    make_worker()
    counter = tmp_path / "flaky.count"
    result = jobs.fails_then_works(str(counter), 2)
    assert result.get(blocking=True, timeout=20) == "worked on attempt 3"
    failing = jobs.fails_then_works(str(tmp_path / "never.count"), 99)
    with pytest.raises(TaskException, match="attempt 6 fails"):
        failing.get(blocking=True, timeout=20)
    assert queries.get_job(huey.jobs.db, failing.id).attempt == 6


def test_jobs_claimed_ahead_of_idle_threads_go_back_untouched_when_the_worker_dies(
        huey, tmp_path, make_worker, record_file):
    settings = write_settings(tmp_path, name="one.toml", worker={
        "max_concurrent_tasks": 1, "prefetch": 4, "crash_limit": 1})
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    run_short_jobs_first()  # it claims ahead only once its jobs read as short
    running, *waiting = enqueue_many([jobs.record_then_sleep.s("started", 60),
                                      *(jobs.record_run.s(f"w{i}") for i in range(4))])
    every = [running.id, *[r.id for r in waiting]]
    wait_for(lambda: read_records(record_file) == ["started"], message="first job to start")
    assert states(huey, every) == ["executing"] * 5  # the other four wait in the process
    worker.kill()

    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: states(huey, every) == ["dead", *["completed"] * 4],
             message="the running job buried, the prefetched ones run")
    db = huey.jobs.db
    assert [e.kind for e in queries.job_errors(db, running.id)] == ["crash"]
    for result in waiting:
        row = queries.get_job(db, result.id)
        assert (row.attempt, row.crashes) == (1, 0), row
        assert queries.job_errors(db, result.id) == []
    assert sorted(line.split()[0] for line in read_records(record_file)) == [
        "started", "w0", "w1", "w2", "w3"]


@pytest.mark.parametrize("module", ["project_tasks", "tasks.mine"])
def test_run_py_imports_task_modules_of_the_directory_it_is_started_in(tmp_path, make_worker,
                                                                       module):
    # Given a project directory with its own task module, and run.py living elsewhere; the
    # project's package may be called `tasks`, as the checkout's examples are
    path = tmp_path.joinpath(*module.split(".")).with_suffix(".py")
    if path.parent != tmp_path:
        path.parent.mkdir()
        (path.parent / "__init__.py").write_text("")
    path.write_text("from pathlib import Path\nfrom runner import task\n\n"
                    "@task\ndef mark_project_run():\n    Path('marked').write_text('ran')\n")
    settings = write_settings(tmp_path, name="project.toml")
    settings.write_text(settings.read_text().replace(
        'imports = ["tests.jobs"]', f'imports = ["{module}"]'))
    # When the worker is started there, as `jobrunner run` would be
    worker = make_worker(settings=settings)
    subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings), "enqueue",
                    "mark_project_run"], cwd=tmp_path, check=True, capture_output=True,
                   timeout=60)
    # Then it imports the project's module (not the checkout's) and runs the job
    wait_for(lambda: (tmp_path / "marked").exists() or worker.proc.poll() is not None,
             message="the project's job to run")
    assert (tmp_path / "marked").exists(), worker.output()
    assert worker.terminate() == 0
