"""Disk full: the worker stops claiming without crashing and resumes once space is back."""

from __future__ import annotations

from runner.config import parse_settings
from runner.worker.guard import ResourceGuard


def page_count(conn):
    return conn.execute("PRAGMA page_count").fetchone()[0]


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
