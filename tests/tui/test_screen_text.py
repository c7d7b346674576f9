"""What the Overview and Job detail screens say, on a database with fixed timestamps."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time

import pytest
from textual.widgets import Static

from runner.testing import drain
from tests import jobs
from tests.tui.conftest import drive, settle, wait_poll
from tui.app import make_app
from tui.widgets.keyed_table import KeyedTable

START = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC).timestamp()


@pytest.fixture
def frozen_db(huey, monkeypatch):
    """Jobs written while the clock reads 2026-01-05 09:30:00 UTC (+1 ms per reading)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    ticks = itertools.count()
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: START + next(ticks) / 1000)
        done = [jobs.add(i, i).id for i in range(3)]
        drain()
        dead = jobs.always_fails("boom").id
        drain(include_scheduled=True)
        waiting = [jobs.noop(i).id for i in range(2)]
    huey.jobs.db.close()
    yield huey.jobs.path, done, dead, waiting
    monkeypatch.delenv("TZ")
    time.tzset()


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def test_overview_text(frozen_db):
    path, _, _, _ = frozen_db
    app = make_app(db=path, refresh=60, clock=lambda: START + 90)

    async def scenario(app, pilot):
        # The error rate is over the last hour: none is shown before the hour is read
        assert "errors: - │" in text(app, "#summary")
        for _ in range(6):  # the history is read a chunk per refresh
            if app.rates.hour_loaded(START + 90):
                break
            before = app.polls
            await pilot.press("ctrl+r")
            await wait_poll(app, pilot, since=before)
        # done/min counts the last 60 seconds: the three completions were 90 s ago
        assert text(app, "#summary") == (
            "waiting: 2 │ running: 0 │ scheduled: 0 │ retrying: 0 │ dead: 1 │ done/min: 0 │ "
            "errors: 50.0% │ oldest waiting: 1m29s")
        assert text(app, "#completed-label").startswith(
            "completed / min · 1h: 3 (peak 3)")
        assert text(app, "#failed-label").startswith(
            "failed attempts / min · 1h: 3 (peak 3)")
        queues = app.screen.query_one("#queues", KeyedTable)
        assert queues.get_row("default")[:7] == ["default", "2", "0", "0", "0", "1m29s", "0"]
        assert text(app, "#status").startswith("updated 09:31:30 in ")
        assert app.screen.query_one("#nav").text.split() == [
            "1", "Overview", "2", "Jobs", "(2", "live)", "3", "Failures", "(1)", "4",
            "Schedules", "5", "Events", "6", "Logs", "7", "Queues"]

    drive(app, scenario)


def test_job_detail_text(frozen_db):
    path, _, dead, _ = frozen_db
    app = make_app(db=path, refresh=60, clock=lambda: START + 90)

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        table.move_cursor(row=table.get_row_index(dead))
        await pilot.press("enter")
        await settle(app, pilot)
        lines = text(app, "#detail").splitlines()
        assert lines[0] == f"always_fails  {dead}"
        assert lines[1] == "state dead  queue default  priority 0  attempt 3 of 3  crashes 0"
        assert lines[2:6] == ["reason: error: always fails boom", "", "Arguments",
                              "{\"args\": [\"boom\"], \"kwargs\": {}}"]
        timeline = lines[lines.index("Timeline") + 1:lines.index("Traceback") - 1]
        assert timeline[0] == "  2026-01-05 09:30:00  enqueued"
        assert [line.split("  ", 2)[2].split(" (")[0] for line in timeline[1:4]] == [
            f"attempt {n} error: ValueError always fails boom" for n in (1, 2, 3)]
        assert timeline[4].startswith("  2026-01-05 09:30:00  dead (ran ")
        tracebacks = lines[lines.index("Traceback"):]
        assert tracebacks.count("ValueError: always fails boom") == 3
        assert any(os.path.join("tests", "jobs.py") in line for line in tracebacks)

    drive(app, scenario)
