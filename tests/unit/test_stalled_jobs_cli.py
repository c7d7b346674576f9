"""python -m runner jobs / show: a job whose worker is gone reads as stalled, as on the
dashboard, the queue tables and ``health``."""

from __future__ import annotations

import subprocess
import sys
import time

from runner.cli import main
from runner.store.rows import JobFilter
from tests import jobs
from tui.screens.jobs import job_cells


def _claimed_by(huey, owner: str) -> str:
    """A job claimed by ``owner``, whose row says running with a fresh heartbeat."""
    store = huey.jobs.store
    result = jobs.noop(1)
    now = time.time()
    store.register(owner, concurrency=1, queues=(), now=now)
    [claimed] = store.claim(now=now, owner=owner, lease_seconds=600, want=1).claimed
    assert claimed.id == result.id
    store.heartbeat(owner, [result.id], lease_seconds=600, now=now)
    return result.id


def _listed_state(out: str, job_id: str) -> str:
    (row,) = [line for line in out.splitlines() if line.startswith(job_id[-12:])]
    return row.split()[3]


def test_a_job_of_a_killed_worker_is_listed_and_shown_as_stalled(huey, settings_file, capsys,
                                                                  monkeypatch):
    # Given a job executing under a worker of this node whose process was killed
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    monkeypatch.setenv("RUNNER_NODE_NAME", "node-7")
    job_id = _claimed_by(huey, f"node-7:{gone.pid}:1")
    # When the jobs are listed and the job is shown
    assert main(["--settings", str(settings_file), "jobs"]) == 0
    listed = capsys.readouterr().out
    assert main(["--settings", str(settings_file), "show", job_id]) == 0
    shown = capsys.readouterr().out
    # Then both say stalled, not executing, and the detail says the worker is gone
    assert _listed_state(listed, job_id) == "stalled", listed
    assert "stalled (executing; its worker is gone)" in shown, shown
    (running_for,) = [line for line in shown.splitlines() if "running for:" in line]
    assert running_for.split(":", 1)[1].strip() == "-", shown


def test_a_job_of_a_live_worker_is_listed_as_executing(huey, settings_file, capsys):
    # Given a job executing under a worker whose heartbeat is fresh (another host's)
    job_id = _claimed_by(huey, "other-host:42:1")
    # When the jobs are listed, Then it is executing
    assert main(["--settings", str(settings_file), "jobs"]) == 0
    assert _listed_state(capsys.readouterr().out, job_id) == "executing"


def test_a_cancel_of_a_stalled_job_says_a_worker_settles_it_once_it_requeues_it(
        huey, settings_file, capsys, monkeypatch):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    monkeypatch.setenv("RUNNER_NODE_NAME", "node-7")
    job_id = _claimed_by(huey, f"node-7:{gone.pid}:1")
    assert main(["--settings", str(settings_file), "cancel", job_id]) == 0
    said = capsys.readouterr().out
    assert "its worker is gone: it ends cancelled once a worker requeues it" in said, said
    assert "its worker stops it" not in said


def _listed_duration(out: str, job_id: str) -> str:
    (row,) = [line for line in out.splitlines() if line.startswith(job_id[-12:])]
    return row.split()[7]  # the creation time takes two


def test_the_listings_show_how_long_a_running_job_has_run_and_no_time_for_a_stalled_one(
        huey, settings_file, capsys, monkeypatch):
    # Given a job running under a live worker for a minute, and one whose worker is gone
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    monkeypatch.setenv("RUNNER_NODE_NAME", "node-7")
    running = _claimed_by(huey, "other-host:42:1")
    stalled = _claimed_by(huey, f"node-7:{gone.pid}:1")
    huey.jobs.store.db.write(lambda conn: conn.execute(
        "UPDATE runner_job SET started_at = started_at - 60"))
    # When the jobs are listed by the CLI and in the dashboard's Jobs table
    assert main(["--settings", str(settings_file), "jobs"]) == 0
    listed = capsys.readouterr().out
    now = time.time()
    rows = {j.id: j for j in huey.jobs.store.list_jobs(JobFilter(), limit=10)}
    live = frozenset({"other-host:42:1"})
    # Then both give the running job its time so far, and the stalled one none: its
    # attempt ended when its worker died, at a time nobody knows
    assert _listed_duration(listed, running) == "1m00s", listed
    assert _listed_duration(listed, stalled) == "-", listed
    assert job_cells(rows[running], now, live)[7] == "1m00s"
    assert job_cells(rows[stalled], now, live)[7] == "-"
