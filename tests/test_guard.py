"""Disk full: the worker stops claiming without crashing and resumes once space is back."""

from __future__ import annotations

import sqlite3
import time

import pytest

from runner.config import DatabaseSection, parse_settings
from runner.db import Database
from runner.errors import DiskFull
from runner.guard import ResourceGuard
from tests import jobs
from tests.conftest import read_records, wait_for, write_settings


def page_count(conn):
    return conn.execute("PRAGMA page_count").fetchone()[0]


def test_disk_full_holds_claims_and_resumes_when_space_is_freed(huey, make_worker, tmp_path,
                                                                record_file):
    # Given a worker whose database may not grow past the current size + headroom
    conn = sqlite3.connect(huey.jobs.db.path, isolation_level=None)
    conn.execute("PRAGMA incremental_vacuum")
    cap = page_count(conn) + 40
    settings = write_settings(tmp_path, extra=f"max_page_count = {cap}\n")
    worker = make_worker(settings=settings)
    wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    # When another process fills the file up to the cap
    conn.execute("CREATE TABLE filler (b BLOB)")
    while page_count(conn) < cap + 5:
        conn.execute("INSERT INTO filler VALUES (randomblob(8000))")
    conn.execute("PRAGMA incremental_vacuum")
    wait_for(lambda: "claiming stopped until space returns" in worker.output(),
             message="disk-full hold")
    # Then new jobs are not claimed, and the worker keeps running
    results = [jobs.record_run(f"job{i}") for i in range(10)]
    deadline = time.monotonic() + 1.5  # three poll intervals: an absence is observed, not awaited
    while time.monotonic() < deadline:
        assert conn.execute("SELECT DISTINCT state FROM runner_job").fetchall() == [
            ("available",)]
        time.sleep(0.05)
    assert worker.proc.poll() is None
    # When space is freed, claiming resumes without a restart and nothing is lost
    conn.execute("DROP TABLE filler")
    wait_for(lambda: "claiming resumes" in worker.output(), message="resume")
    assert [r.get(blocking=True, timeout=15) for r in results] == [f"job{i}" for i in range(10)]
    labels = sorted(line.split()[0] for line in read_records(record_file))
    assert labels == sorted(f"job{i}" for i in range(10))
    assert worker.terminate() == 0
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


class FakeStorage:
    def __init__(self, db):
        self.db = db
        self.holds = {}
        self.on_disk_full = None

    def hold_claims(self, key, reason):
        self.holds[key] = reason

    def release_claims(self, key):
        return self.holds.pop(key, None) is not None


def test_memory_limit_holds_claims_and_asks_for_a_drain(huey):
    settings = parse_settings({"worker": {"max_memory_mb": 10, "min_free_disk_mb": 0}})
    asked = []
    guard = ResourceGuard(FakeStorage(huey.jobs.db), settings, on_memory_limit=asked.append)
    guard.check(5 * 2**20)
    assert asked == [] and guard.status() == "running"
    guard.check(50 * 2**20)
    guard.check(60 * 2**20)
    assert asked == [50 * 2**20]
    assert guard.status().startswith("paused: memory 50 MiB over max_memory_mb 10")


def test_low_free_space_holds_claims(huey):
    settings = parse_settings({"worker": {"min_free_disk_mb": 2**40}})
    guard = ResourceGuard(FakeStorage(huey.jobs.db), settings)
    guard.check()
    assert "min_free_disk_mb" in guard.reason


def test_claiming_does_not_flap_while_the_disk_sits_at_the_edge(huey):
    # Given a file with room for a few pages only, under a cap
    path = huey.jobs.db.path
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE filler (b BLOB)")
    for _ in range(30):
        conn.execute("INSERT INTO filler VALUES (randomblob(4000))")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    capped = Database(path, DatabaseSection(max_page_count=page_count(conn) + 8))
    guard = ResourceGuard(FakeStorage(capped), parse_settings({"worker": {"min_free_disk_mb": 0}}))
    # When a claim's write did not fit, claiming is held
    guard.disk_full(DiskFull("database or disk is full"))
    assert guard.reason.startswith("disk full")
    # Then a tiny probe that happens to fit does not resume it, pass after pass
    for _ in range(4):
        guard.check_disk()
        assert guard.reason is not None and guard.reason.startswith("disk full")
    # When real room comes back, claiming resumes after consecutive good probes, and stays so
    conn.execute("DROP TABLE filler")
    guard.check_disk()
    assert guard.reason is not None
    guard.check_disk()
    assert guard.reason is None
    for _ in range(3):
        guard.check_disk()
        assert guard.reason is None
    assert conn.execute("SELECT count(*) FROM runner_meta WHERE key = 'disk_probe'").fetchone() \
        == (0,)
    capped.close()
    conn.close()


@pytest.mark.parametrize(("free", "held", "holds"), [
    (100, False, False), (63, False, True), (70, True, True), (79, True, True),
    (80, True, False), (64, False, False)])
def test_low_space_hold_ends_only_a_margin_above_the_minimum(free, held, holds):
    from runner.guard import holds_for_space

    assert holds_for_space(free, 64, held) is holds
