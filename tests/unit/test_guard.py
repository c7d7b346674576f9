"""Disk full: the worker stops claiming without crashing and resumes once space is back."""

from __future__ import annotations

import sqlite3

import pytest

from runner.config import DatabaseSection
from runner.errors import DiskFull
from runner.settings_loader import parse_settings
from runner.store.factory import store_for
from runner.store.sqlite.db import Database
from runner.worker.guard import ResourceGuard, holds_for_space


def page_count(conn):
    return conn.execute("PRAGMA page_count").fetchone()[0]


class FakeStorage:
    def __init__(self, db):
        self.db = db
        self.store = store_for(db)
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
    assert holds_for_space(free, 64, held) is holds
