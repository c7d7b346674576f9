"""health: 0 with a live worker; 1 with a stale heartbeat, a stuck queue, a lagging scheduler."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from runner.cli import main as cli
from tests.conftest import ROOT, wait_for, write_settings
from tests.unit.test_cli_unreachable import web_server


def health(huey, capsys):
    capsys.readouterr()
    code = cli(["--settings", str(huey.settings.path), "health"])
    return code, capsys.readouterr().out.strip()


def registered_worker(huey, make_worker):
    worker = make_worker()
    wait_for(lambda: huey.jobs.db.query("SELECT 1 FROM runner_worker WHERE state='running'"),
             message="worker registered")
    return worker


def test_healthy_with_a_live_worker_then_stale_when_its_heartbeat_stops(huey, make_worker,
                                                                        capsys):
    worker = registered_worker(huey, make_worker)
    db = huey.jobs.db
    assert health(huey, capsys) == (0, "ok")
    worker.kill()  # no clean exit: the row stays 'running' and its heartbeat ages
    # As a worker of another host: only its silence tells it died (this host's is known
    # dead at once, its process gone: the test below).
    db.write(lambda c: c.execute("UPDATE runner_worker SET id = 'other-host:1:1', "
                                 "heartbeat_at = heartbeat_at - 3600"))
    code, out = health(huey, capsys)
    assert code == 1 and out.startswith("unhealthy: worker heartbeat is stale")
    assert "\n" not in out


def test_a_worker_of_this_host_whose_process_is_gone_fails_health_at_once(huey, make_worker,
                                                                         capsys):
    # Given the only worker, killed: its heartbeat is still fresh, its process gone
    registered_worker(huey, make_worker).kill()
    # Then health says so at once, as `workers` does, not once the heartbeat is stale
    code, out = health(huey, capsys)
    assert code == 1 and "process" in out and "gone" in out, out


def test_stats_says_a_killed_worker_is_dead_as_workers_does(huey, make_worker, capsys):
    registered_worker(huey, make_worker).kill()
    capsys.readouterr()
    assert cli(["--settings", str(huey.settings.path), "stats"]) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.split("\nworkers:")[1].splitlines() if ":" in x and "ago" in x]
    assert "dead (process gone)" in line and "/" not in line.split("ago")[1].split()[0], line


def test_a_worker_is_healthy_again_after_its_file_is_restored_from_a_backup(
        huey, make_worker, capsys, tmp_path):
    import os
    import sqlite3

    # Given a backup taken before the worker started, and the worker running
    path = huey.jobs.db.path
    backup = tmp_path / "backup.db"
    with sqlite3.connect(path) as source, sqlite3.connect(backup) as target:
        source.backup(target)
    registered_worker(huey, make_worker)
    assert health(huey, capsys) == (0, "ok")
    # When the file is restored as the README says (the backup has no row of it)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.replace(f"{path}{suffix}", f"{path}.broken{suffix}")
    os.replace(backup, path)
    # Then the worker writes its row again, and health (a new process) is ok again
    from tests.process.test_cli import cli as run_cli

    wait_for(lambda: run_cli(huey.settings.path, "health").stdout.strip() == "ok", timeout=20,
             message="the worker to register in the restored file")


@pytest.mark.parametrize("url", ["redis://127.0.0.1:{port}/0?prefix=x",
                                 "postgresql://postgres@127.0.0.1:{port}/test"])
def test_health_pointed_at_another_kind_of_server_exits_1_as_unhealthy(tmp_path, url):
    # A probe reads 0 or 1: a port where a web server answers is a database it cannot reach
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKER_", "RUNNER_", "REDIS_"))}
    env["PYTHONPATH"] = str(ROOT)
    with web_server() as port:
        done = subprocess.run([sys.executable, "-m", "runner", "--database",
                               url.format(port=port), "health"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("unhealthy: database: ") and f"127.0.0.1:{port}" in done.stdout
    assert len(done.stdout.splitlines()) == 1 and done.stderr == "", done.stderr


def test_a_file_another_process_holds_locked_is_unhealthy_within_its_busy_timeout(tmp_path):
    settings = write_settings(tmp_path)
    settings.write_text(settings.read_text().replace("busy_timeout = 10",
                                                     "busy_timeout = 1\nwrite_deadline = 2"))

    def command(*args: str) -> tuple[subprocess.CompletedProcess, float]:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings),
                               *args], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        return done, time.monotonic() - started

    assert command("enqueue", "tests.jobs.add", "--args", "[1, 1]")[0].returncode == 0
    # Given the file held by a process that keeps its write lock (exclusive locking mode)
    holder = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE runner_job SET priority = priority")
    try:
        # When a probe asks, then it is told so in one line, not after a hang
        done, took = command("health")
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stdout.startswith("unhealthy: database: ") and "locked" in done.stdout
        assert took < 12, took  # write_deadline, then busy_timeout per try
    finally:
        holder.close()
