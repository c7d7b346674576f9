"""Older databases get incremental auto_vacuum once, when a worker has the file to itself."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

from tests.conftest import wait_for
from tests.process.test_cli import cli as run_cli


def auto_vacuum(path):
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA auto_vacuum").fetchone()[0]


def make_old_database(path):
    """A jobs database as older versions made it: WAL on first, so auto_vacuum stayed off."""
    from runner.store.sqlite.models import create_schema

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("BEGIN IMMEDIATE")
    create_schema(conn)
    conn.execute("COMMIT")
    assert conn.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    return conn


def test_a_worker_switches_an_old_database_it_has_to_itself(tmp_path, settings_file, make_worker):
    conn = make_old_database(tmp_path / "jobs.db")
    worker = make_worker()
    wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    assert "switched to incremental auto_vacuum" in worker.output()
    assert auto_vacuum(tmp_path / "jobs.db") == 2
    assert worker.terminate() == 0
    conn.close()


def test_an_old_database_in_use_is_left_alone_and_the_operator_told(tmp_path, settings_file,
                                                                     make_worker):
    conn = make_old_database(tmp_path / "jobs.db")
    now = time.time()
    conn.execute("INSERT INTO runner_worker (id, host, pid, started_at, heartbeat_at, state) "
                 "VALUES ('other:1:1', 'other', 1, ?, ?, 'running')", (now, now))
    worker = make_worker()
    wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    assert "auto_vacuum is off in this database" in worker.output()
    assert auto_vacuum(tmp_path / "jobs.db") == 0
    assert worker.terminate() == 0
    for command in ("prune", "check"):
        done = run_cli(settings_file, command)
        assert done.returncode == 0, done.stderr
        assert "note: auto_vacuum is off" in done.stdout
        assert "python -m runner vacuum" in done.stdout
    refused = run_cli(settings_file, "vacuum")
    assert refused.returncode == 75 and "worker(s) running" in refused.stderr
    forced = run_cli(settings_file, "vacuum", "--force")
    assert forced.returncode == 0, forced.stderr
    assert auto_vacuum(tmp_path / "jobs.db") == 2
    assert "note:" not in run_cli(settings_file, "prune").stdout
    conn.close()
