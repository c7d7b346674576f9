"""SIGHUP reloads settings; a broken file is rejected and the old settings stay."""

from __future__ import annotations

import signal

from runner.store.sqlite.queries import list_workers
from tests import jobs
from tests.conftest import read_records, wait_for


def test_sighup_with_a_broken_file_keeps_running_on_the_old_settings(huey, make_worker,
                                                                     settings_file):
    worker = make_worker()
    db = huey.jobs.db
    wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    good = settings_file.read_text()
    # When the file is broken and the worker gets SIGHUP
    settings_file.write_text(good + "\n[worker]\nnot valid toml = = =\n")
    worker.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "new settings rejected" in worker.output(), message="rejection logged")
    assert "TOML syntax error" in worker.output()
    # Then it still runs jobs with the old settings
    assert jobs.add(2, 3).get(blocking=True, timeout=10) == 5
    assert worker.proc.poll() is None
    # And a good file with a new log level is applied without a restart
    settings_file.write_text(good.replace("[worker]", "[worker]\nlog_level = \"DEBUG\""))
    worker.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "settings reloaded" in worker.output(), message="reload logged")
    jobs.add(1, 1).get(blocking=True, timeout=10)
    wait_for(lambda: "DEBUG" in worker.output(), message="debug lines")
    assert len(list_workers(db)) == 1  # same process: no re-exec
    assert worker.terminate() == 0


def test_sighup_raising_a_task_limit_starts_the_jobs_it_held_back(
        huey, make_worker, settings_file, record_file, tmp_path):
    # Given a task limited to one running job and three of its jobs, the first running
    # and the others held back (parked by the claims that passed over them)
    good = settings_file.read_text()
    settings_file.write_text(good + "\n[tasks.record_then_wait]\nconcurrency = 1\n")
    gate = tmp_path / "gate"
    worker = make_worker()
    wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    for n in range(3):
        jobs.record_then_wait(f"held {n}", str(gate))
    try:
        wait_for(lambda: read_records(record_file) == ["held 0"], message="the first job")
        wait_for(lambda: huey.jobs.db.query(
            "SELECT count(*) FROM runner_job WHERE parked IS NOT NULL") == [(2,)],
            message="the other two parked")
        # When the limit is raised and the worker gets SIGHUP
        settings_file.write_text(good + "\n[tasks.record_then_wait]\nconcurrency = 3\n")
        worker.proc.send_signal(signal.SIGHUP)
        # Then the held-back jobs start while the first still runs
        wait_for(lambda: sorted(read_records(record_file)) == ["held 0", "held 1", "held 2"],
                 timeout=10, message="the held-back jobs to start")
    finally:
        gate.touch()
    assert worker.terminate() == 0, worker.output()


def test_sighup_pauses_a_queue_settings_now_pause_and_keeps_a_resume_made_since(
        huey, make_worker, settings_file, record_file):
    from runner.store.states import JobState
    from tests.process.test_cli import cli

    def mail_state(result):
        return huey.jobs.store.get_job(result.id).state

    def labels():
        return [line.split()[0] for line in read_records(record_file)]

    good = settings_file.read_text()
    worker = make_worker()
    wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    # When the file pauses a queue, before any reload: the listing shows what workers do
    settings_file.write_text(good + "\n[queues.mail]\npaused = true\n")
    row = next(line for line in cli(settings_file, "queues").stdout.splitlines()
               if line.startswith("mail"))
    assert "active" in row and "paused by" not in row, row
    # And once the worker gets SIGHUP, the queue is paused, by settings
    worker.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "settings reloaded" in worker.output(), message="reload logged")
    wait_for(lambda: [(p.name, p.paused, p.changed_by) for p in huey.jobs.store.list_pauses()]
             == [("mail", True, "settings")], timeout=10, message="the pause recorded")
    held = jobs.mail_record("held")
    jobs.record_run("other")  # due after the mail job: it runs only if that one is skipped
    wait_for(lambda: "other" in labels(), message="the other job")
    assert mail_state(held) == JobState.AVAILABLE
    assert "paused by settings" in next(
        line for line in cli(settings_file, "queues").stdout.splitlines()
        if line.startswith("mail"))
    # When someone resumes it and the worker reloads the same file again
    assert cli(settings_file, "queues", "resume", "mail").returncode == 0
    wait_for(lambda: "held" in labels(), message="the resumed mail job")
    worker.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: worker.output().count("settings reloaded") == 2, message="second reload")
    # Then the resume holds: the file's state only applies where none is recorded
    after = jobs.mail_record("after")
    wait_for(lambda: mail_state(after) == JobState.COMPLETED, message="a mail job after reload")
    assert worker.terminate() == 0, worker.output()
