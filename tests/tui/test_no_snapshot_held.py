"""A refresh must not leave a read transaction (or an open cursor) behind."""

from __future__ import annotations

import sqlite3

from tests import jobs
from tests.tui.conftest import drive, settle, wait_poll


def test_after_a_refresh_the_wal_checkpoints_fully(dashboard, seeded, huey):
    async def scenario(app, pilot):
        for key in ("1", "2", "3", "6"):
            await pilot.press(key)
            await settle(app, pilot)
        for i in range(200):  # writes after the dashboard's reads grow the WAL;
            jobs.noop(i)      # the writer's connection stays open, so the WAL stays
        before = app.polls
        await pilot.press("ctrl+r")
        await wait_poll(app, pilot, since=before)
        wal = seeded.path.parent / (seeded.path.name + "-wal")
        assert wal.stat().st_size > 0
        other = sqlite3.connect(seeded.path)
        try:
            busy, _log, _done = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0
            assert wal.stat().st_size == 0
        finally:
            other.close()

    drive(dashboard(), scenario)
