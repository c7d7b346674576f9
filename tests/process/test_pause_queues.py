"""Pausing a queue or a task from the command line: held across a worker restart, nothing lost."""

from __future__ import annotations

import json

from runner.store.sqlite import queries
from runner.store.states import JobState
from tests import jobs
from tests.conftest import read_records, wait_for
from tests.process.test_cli import cli


def labels(record_file) -> list[str]:
    return [line.split()[0] for line in read_records(record_file)]


def states(huey, results) -> set[str]:
    return {queries.get_job(huey.jobs.db, r.id).state for r in results}


def test_a_paused_queue_survives_a_worker_restart_and_loses_nothing(
        huey, make_worker, record_file, settings_file):
    huey.jobs.db  # noqa: B018 - the jobs database exists (a pause creates none)
    assert cli(settings_file, "queues", "pause", "mail").returncode == 0
    worker = make_worker()
    mails = [jobs.mail_record(f"mail-{n}") for n in range(5)]
    jobs.record_run("first")  # due after the mail jobs: it runs only if they are skipped
    wait_for(lambda: "first" in labels(record_file), timeout=30, message="the first job")
    assert states(huey, mails) == {JobState.AVAILABLE}
    assert worker.terminate() == 0

    worker = make_worker()  # a new process reads the pause from the database
    jobs.record_run("second")
    wait_for(lambda: "second" in labels(record_file), timeout=30, message="the second job")
    assert states(huey, mails) == {JobState.AVAILABLE}
    listing = json.loads(cli(settings_file, "queues", "--json").stdout)
    mail = next(q for q in listing["queues"] if q["name"] == "mail")
    assert (mail["paused"], mail["waiting"]) == (True, 5)
    assert "(cli)" in mail["paused_by"]

    done = cli(settings_file, "queues", "resume", "mail")
    assert done.returncode == 0 and "mail: resumed" in done.stdout
    wait_for(lambda: len(labels(record_file)) == 7, timeout=30, message="the mail jobs")
    assert sorted(labels(record_file)) == sorted(["first", "second",
                                                  *(f"mail-{n}" for n in range(5))])
    assert states(huey, mails) == {JobState.COMPLETED}
    assert worker.terminate() == 0


def test_a_paused_task_waits_in_every_queue_until_resumed(
        huey, make_worker, record_file, settings_file):
    huey.jobs.db  # noqa: B018 - the jobs database exists (a pause creates none)
    assert cli(settings_file, "tasks", "pause", "record_run").returncode == 0
    worker = make_worker()
    held = jobs.record_run("held")
    assert jobs.add(1, 2).get(blocking=True, timeout=30) == 3
    assert queries.get_job(huey.jobs.db, held.id).state == JobState.AVAILABLE
    assert "paused tasks: record_run" in cli(settings_file, "queues").stdout
    assert cli(settings_file, "tasks", "resume", "record_run").returncode == 0
    wait_for(lambda: labels(record_file) == ["held"], timeout=30, message="the held job")
    assert worker.terminate() == 0


def test_settings_start_a_queue_paused_until_someone_resumes_it(
        huey, make_worker, record_file, tmp_path):
    from tests.conftest import write_settings

    settings = write_settings(tmp_path, name="paused.toml",
                              extra="\n[queues.mail]\npaused = true\n")
    worker = make_worker(settings=settings)
    mail = jobs.mail_record("from-settings")
    jobs.record_run("other")
    wait_for(lambda: "other" in labels(record_file), timeout=30, message="the other job")
    assert queries.get_job(huey.jobs.db, mail.id).state == JobState.AVAILABLE
    assert cli(settings, "queues", "resume", "mail").returncode == 0
    wait_for(lambda: "from-settings" in labels(record_file), timeout=30, message="mail")
    assert worker.terminate() == 0


def test_pausing_a_task_that_does_not_exist_is_refused_naming_the_tasks(huey, settings_file):
    huey.jobs.db  # noqa: B018 - the jobs database exists (a pause creates none)
    typo = cli(settings_file, "tasks", "pause", "record_rn")
    assert typo.returncode == 65 and "no task named 'record_rn'" in typo.stderr, typo.stderr
    assert "record_run" in typo.stderr
    assert "paused tasks" not in cli(settings_file, "queues").stdout
    # A task's full name pauses the name its jobs carry
    full = cli(settings_file, "tasks", "pause", "tests.jobs.record_run")
    assert full.returncode == 0 and "task record_run: paused" in full.stdout, full.stderr
    assert "paused tasks: record_run" in cli(settings_file, "queues").stdout
    # A paused name is resumed even when no imported module defines it any more
    huey.jobs.store.set_pause("task", "gone_task", True, now=0, by="someone")
    gone = cli(settings_file, "tasks", "resume", "gone_task")
    assert gone.returncode == 0 and "task gone_task: resumed" in gone.stdout, gone.stderr
