"""Numbers that agree: with each other, with the database and with the workers."""

from __future__ import annotations

import datetime as dt
import itertools
import time

from textual.widgets import Static

from runner.store.sqlite.queries import JobFilter
from runner.testing import drain
from tests import jobs
from tests.tui.conftest import drive, settle
from tui.app import make_app
from tui.widgets.keyed_table import KeyedTable

START = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC).timestamp()


def test_done_per_minute_counts_the_last_sixty_seconds(huey, monkeypatch):
    ticks = itertools.count()
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: START + next(ticks) / 1000)
        [jobs.add(i, i) for i in range(3)]
        drain()
    huey.jobs.db.close()

    async def scenario(app, pilot):
        # 30 s into a new minute: the last full minute had none, the last 60 s three
        strip = str(app.screen.query_one("#summary", Static).render())
        assert "done/min: 3" in strip

    drive(make_app(db=huey.jobs.path, refresh=60, clock=lambda: START + 30), scenario)


def test_a_text_filter_count_follows_an_action_at_once(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        app.screen.set_filter(JobFilter(state="available", text="example.com"))
        await settle(app, pilot)
        line = app.screen.query_one("#filter-line", Static)
        assert "1-2 of 2" in str(line.render())
        table = app.screen.query_one("#jobs", KeyedTable)
        table.move_cursor(row=table.get_row_index(seeded.mail[0]))
        await pilot.press("c")
        await settle(app, pilot)
        assert table.row_count == 1
        assert "1-1 of 1" in str(line.render())

    drive(dashboard(), scenario)
