"""Retention prunes old rows with their errors and logs; the WAL is truncated after a reader."""

from __future__ import annotations

import sqlite3
import time

from runner.cli import main as cli
from runner.config import DatabaseSection
from runner.flow import FlowLimits
from runner.settings_loader import parse_settings
from runner.store.job_rows import Ack
from runner.store.sqlite import SqliteStore
from runner.store.sqlite.db import Database
from runner.store.sqlite.maintenance import (
    DAY,
    RetentionSection,
    checkpoint,
    prune,
    retention_settings,
)
from runner.store.sqlite.schema import prepare_database
from runner.testing import drain
from tests import jobs
from tests.conformance.helpers import OWNER, T0, job
from tests.conftest import write_settings


def age_jobs(db, days):
    db.write(lambda c: c.execute(
        "UPDATE runner_job SET finished_at = finished_at - ?", (days * DAY,)))


def test_old_completed_and_dead_jobs_go_with_their_errors_and_logs(huey, capsys):
    db = huey.jobs.db
    old_ok, old_dead = jobs.add(1, 1), jobs.always_fails("old")
    drain(include_scheduled=True)
    age_jobs(db, 40)
    new_ok = jobs.add(2, 2)
    drain()
    now = time.time()
    db.write(lambda c: c.executemany(
        "INSERT INTO runner_log (created_at, level, logger, message, job_id) VALUES (?,?,?,?,?)",
        [(now, 20, "t", "old job line", old_ok.id), (now - 10 * DAY, 20, "w", "old worker", None),
         (now, 20, "w", "new worker", None)]))
    # A dry run only counts
    capsys.readouterr()
    assert cli(["--settings", str(huey.settings.path), "prune", "--dry-run"]) == 0
    assert "would delete: 2 jobs, 2 logs" in capsys.readouterr().out
    assert db.query("SELECT count(*) FROM runner_job")[0][0] == 3
    # The real pass deletes old jobs, their errors, logs and results
    report = prune(db, RetentionSection())
    assert report.deleted["jobs"] == 2 and report.deleted["logs"] == 2
    assert [r[0] for r in db.query("SELECT id FROM runner_job")] == [new_ok.id]
    assert db.query("SELECT count(*) FROM runner_job_error")[0][0] == 0
    assert [r[0] for r in db.query("SELECT message FROM runner_log")] == ["new worker"]
    assert db.query("SELECT count(*) FROM runner_kv WHERE key = ?", (old_ok.id,)) == [(0,)]
    assert old_dead.id not in [r[0] for r in db.query("SELECT id FROM runner_job")]


def test_dead_jobs_are_kept_longer_than_completed_ones(huey):
    db = huey.jobs.db
    jobs.add(1, 1)
    jobs.always_fails("x")
    drain(include_scheduled=True)
    age_jobs(db, 10)
    prune(db, RetentionSection(completed_days=7, dead_days=30))
    assert [r[0] for r in db.query("SELECT state FROM runner_job")] == ["dead"]


def test_old_finished_events_are_pruned_and_pending_ones_kept(huey):
    db = huey.jobs.db
    old = time.time() - 60 * DAY
    db.write(lambda c: c.executemany(
        "INSERT INTO runner_event (id, name, data, emitted_at, status) VALUES (?,?,?,?,?)",
        [("old", "a.b", "{}", old, "dispatched"), ("stuck", "a.b", "{}", old, "pending"),
         ("new", "a.b", "{}", time.time(), "dispatched")]))
    assert prune(db, RetentionSection(), dry_run=True).deleted["events"] == 1
    assert prune(db, RetentionSection()).deleted["events"] == 1
    assert sorted(db.query("SELECT id FROM runner_event")) == [("new",), ("stuck",)]


def test_wal_is_truncated_after_a_long_reader_leaves(huey):
    db = huey.jobs.db
    reader = sqlite3.connect(db.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM runner_job").fetchall()  # holds a snapshot
    for _ in range(5):
        db.write(lambda c: c.executemany(
            "INSERT INTO runner_log (created_at, level, logger, message) VALUES (?,?,?,?)",
            [(time.time(), 20, "w", "x" * 500)] * 500))
    before, after, busy = checkpoint(db)
    assert busy and after > 1_000_000  # the reader pins the WAL
    reader.execute("COMMIT")
    reader.close()
    report = prune(db, RetentionSection(wal_truncate_mb=0.5))
    assert report.wal_bytes_before > 1_000_000
    assert report.wal_bytes_after == 0 and not report.checkpoint_busy


def test_retention_section_is_validated():
    assert retention_settings(parse_settings({"retention": {"dead_days": 3}})).dead_days == 3.0
    import pytest

    from runner.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown key 'keep'"):
        retention_settings(parse_settings({"retention": {"keep": 1}}))


def insert_finished_jobs(db, count, *, days_ago, payload=2000):
    """``count`` completed jobs with ``payload`` bytes each, finished ``days_ago``, each with
    an old log line."""
    at = time.time() - days_ago * DAY
    db.write(lambda c: c.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO runner_job (id, task, state, data, run_at, created_at, finished_at) "
        "SELECT 'old' || i, 'tests.jobs.add', 'completed', randomblob(?), ?, ?, ? FROM n",
        (count, payload, at, at, at)))
    db.write(lambda c: c.execute(
        "INSERT INTO runner_log (created_at, level, logger, message, job_id) "
        "SELECT ?, 20, 't', 'job line', id FROM runner_job WHERE id LIKE 'old%'", (at,)))


def test_dry_run_and_real_run_agree_on_every_count(huey):
    db = huey.jobs.db
    insert_finished_jobs(db, 50, days_ago=30, payload=10)
    now = time.time()
    db.write(lambda c: c.executemany(
        "INSERT INTO runner_log (created_at, level, logger, message) VALUES (?,?,?,?)",
        [(now - 30 * DAY, 20, "w", "old worker line"), (now, 20, "w", "new worker line")]))
    dry = prune(db, RetentionSection(), dry_run=True)
    real = prune(db, RetentionSection())
    assert dry.deleted["jobs"] == real.deleted["jobs"] == 50
    assert dry.deleted["logs"] == real.deleted["logs"] == 51
    assert db.query("SELECT message FROM runner_log") == [("new worker line",)]


def test_a_new_database_gives_pruned_space_back_to_the_file_system(huey, capsys):
    db = huey.jobs.db
    assert db.query("PRAGMA auto_vacuum") == [(2,)]  # incremental, set before any table
    insert_finished_jobs(db, 3000, days_ago=30)
    checkpoint(db)
    before = db.path.stat().st_size
    assert before > 6_000_000
    capsys.readouterr()
    assert cli(["--settings", str(huey.settings.path), "prune"]) == 0
    out = capsys.readouterr().out
    assert "deleted: 3000 jobs, 3000 logs" in out
    pages = int(out.split("vacuumed ")[1].split()[0])
    assert pages > 1000
    checkpoint(db)
    assert db.path.stat().st_size < before / 4
    assert "auto_vacuum is off" not in out


def test_prune_forgets_idle_queues_but_those_the_settings_name(tmp_path, capsys):
    settings = write_settings(tmp_path, extra="\n[queues.mail]\nweight = 3\n")
    db = Database(tmp_path / "jobs.db", DatabaseSection(synchronous="NORMAL"))
    prepare_database(db)
    store = SqliteStore(db)
    store.enqueue([job(queue=q) for q in ("mail", "tenant-1", "tenant-2") for _ in range(2)],
                  now=T0)
    while claimed := store.claim(now=T0, owner=OWNER, lease_seconds=30, want=3,
                                 limits=FlowLimits(weights={"mail": 3})).claimed:
        store.complete([Ack(c.id, 1, T0, T0) for c in claimed])
    assert cli(["--settings", str(settings), "prune", "--dry-run"]) == 0
    assert "would forget 2 idle queues" in capsys.readouterr().out
    assert cli(["--settings", str(settings), "prune"]) == 0
    assert "forgot 2 idle queues" in capsys.readouterr().out
    assert db.query("SELECT queue FROM runner_job_total WHERE task = ''") == [("mail",)]
