"""Schedules in real run.py subprocesses: precision, roles, exactly once, bad settings."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from runner.scheduling.control import get_schedule
from runner.store.sqlite import queries
from runner.store.sqlite.schedules import schedule_runs
from tests.conftest import wait_for, write_settings

ALLOW = '[schedules.every_second]\noverlap = "allow"\n'


def sched_settings(tmp_path: Path, extra: str = "") -> Path:
    """Test settings that also load the scheduled tasks of tests/sched_jobs.py."""
    path = write_settings(tmp_path, extra=extra)
    path.write_text(path.read_text().replace(
        'imports = ["tests.jobs"]', 'imports = ["tests.jobs", "tests.sched_jobs"]'))
    return path


def fired(huey, name: str = "every_second"):
    return [r for r in schedule_runs(huey.jobs.db, name, limit=10_000) if not r.manual]


@pytest.mark.solo  # measures wall-clock precision
def test_every_second_schedule_fires_within_100ms_of_each_second(huey, tmp_path, make_worker):
    # Given a run.py (scheduler and workers) with a */1 seconds schedule
    worker = make_worker(settings=sched_settings(tmp_path, ALLOW))
    # When it runs for 10 seconds of slots
    wait_for(lambda: len(fired(huey)) >= 11, timeout=40, message="11 fired slots")
    assert worker.terminate() == 0, worker.output()
    runs = fired(huey)
    # Then no second was missed, each fired within 100 ms of its slot, and each ran
    slots = [r.slot for r in runs]
    assert slots == [slots[0] + i for i in range(len(slots))]
    lags = sorted(r.lag for r in runs)
    assert 0 <= lags[0] and lags[-1] < 0.1, lags
    assert all(r.outcome == "enqueued" for r in runs)
    states = {queries.get_job(huey.jobs.db, r.job_id).state for r in runs[:-2]}
    assert states == {"completed"}


def test_scheduler_only_processes_fire_each_slot_once_and_workers_only_run_them(
        huey, tmp_path, make_worker):
    settings = sched_settings(tmp_path, ALLOW)
    db = huey.jobs.db
    # Given a --workers-only process alone: it runs jobs but fires nothing
    workers = make_worker("--workers-only", settings=settings)
    beats: list[float] = []

    def heartbeats_for_a_second() -> bool:
        rows = queries.list_workers(db)
        if rows:
            beats.append(rows[0].heartbeat_at)
        return bool(beats) and beats[-1] - beats[0] >= 1.0

    wait_for(heartbeats_for_a_second, message="the worker to heartbeat for a second")
    assert fired(huey) == []
    # When two --scheduler-only processes share the database with it
    schedulers = [make_worker("--scheduler-only", settings=settings) for _ in range(2)]
    wait_for(lambda: len(fired(huey)) >= 4, timeout=30, message="4 fired slots")
    for process in schedulers:
        assert process.terminate() == 0, process.output()
    # Then each slot fired once, with exactly one job, and the worker ran every one
    runs = fired(huey)
    job_ids = [r.job_id for r in runs]
    assert len({r.slot for r in runs}) == len(runs) == len(set(job_ids))
    (count,) = db.query("SELECT count(*) FROM runner_job WHERE schedule='every_second'")[0]
    assert count == len(runs)
    wait_for(lambda: all(queries.get_job(db, i).state == "completed" for i in job_ids),
             message="the scheduled jobs to complete")
    assert workers.terminate() == 0
    threads = sorted(w.concurrency for w in queries.list_workers(db, include_stopped=True))
    assert threads == [0, 0, 4]


def test_run_py_exits_78_naming_a_schedule_with_a_bad_expression(tmp_path, make_worker):
    settings = sched_settings(tmp_path, '[schedules.every_second]\ncron = "*/0 * * * *"\n')
    worker = make_worker(settings=settings)
    assert worker.wait(30) == 78
    assert "every_second" in worker.output() and "*/0" in worker.output()


def test_run_py_exits_78_naming_a_schedule_whose_arguments_are_over_max_payload_mb(
        huey, tmp_path, make_worker):
    # Given a schedule whose 2 MiB arguments every run would carry, under a 1 MiB bound
    settings = write_settings(tmp_path, worker={"max_payload_mb": 1})
    settings.write_text(settings.read_text().replace(
        'imports = ["tests.jobs"]', 'imports = ["tests.jobs", "tests.sched_big_jobs"]'))
    # When run.py starts, it refuses before any schedule is written or job enqueued
    worker = make_worker(settings=settings)
    assert worker.wait(30) == 78, worker.output()
    output = worker.output()
    assert re.search(r"schedule 'nightly_blob': payload of \d+ bytes \(2\.0 MiB\) is over "
                     r"\[worker\] max_payload_mb = 1", output), output
    assert huey.jobs.store.list_schedules() == [] and huey.jobs.store.count_jobs() == 0


def test_sighup_lowering_max_payload_mb_under_a_schedule_is_rejected(tmp_path, make_worker):
    # Given a worker firing a schedule of 2 MiB arguments under a bound of 4 MiB
    settings = write_settings(tmp_path, worker={"max_payload_mb": 4})
    settings.write_text(settings.read_text().replace(
        'imports = ["tests.jobs"]', 'imports = ["tests.jobs", "tests.sched_big_jobs"]'))
    worker = make_worker(settings=settings)
    wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    # When the bound is lowered to 1 MiB and the worker gets SIGHUP
    settings.write_text(settings.read_text().replace("max_payload_mb = 4", "max_payload_mb = 1"))
    worker.proc.send_signal(signal.SIGHUP)
    # Then the new settings are rejected naming the schedule, and it runs on the old ones
    wait_for(lambda: "new settings rejected" in worker.output(), message="rejection logged")
    assert re.search(r"schedule 'nightly_blob': payload of \d+ bytes \(2\.0 MiB\) is over "
                     r"\[worker\] max_payload_mb = 1", worker.output()), worker.output()
    assert worker.proc.poll() is None
    assert worker.terminate() == 0, worker.output()


def test_run_py_exits_78_for_an_unknown_schedule_key(tmp_path, make_worker):
    settings = sched_settings(tmp_path, '[schedules.every_second]\nevery = 5\n')
    worker = make_worker("--workers-only", settings=settings)
    assert worker.wait(30) == 78
    assert "unknown key 'every'" in worker.output()


def test_a_scheduler_keeps_firing_its_schedules_after_another_process_marks_them_orphaned(
        huey, tmp_path, make_worker):
    # Given a run.py that defines the every-second schedule, firing it
    first = make_worker(settings=sched_settings(tmp_path, ALLOW))
    wait_for(lambda: len(fired(huey)) >= 2, timeout=30, message="2 fired slots")
    # When a second run.py that imports no scheduled tasks starts on the same database:
    # at start it marks every schedule it does not define orphaned
    second = make_worker(settings=write_settings(tmp_path, name="plain.toml"))
    wait_for(lambda: "scheduler started with 0 schedules" in second.output(), timeout=30,
             message="the second process's scheduler to have written its (no) schedules")
    after = len(fired(huey))
    # Then the first one, which still defines the schedule, goes on firing it
    wait_for(lambda: len(fired(huey)) >= after + 3, timeout=30,
             message="3 more slots fired by the process that defines the schedule")
    assert not get_schedule("every_second", huey=huey).orphaned
    assert "marked orphaned by another process" in first.output()
    assert first.terminate() == 0, first.output()
    assert second.terminate() == 0, second.output()
