"""Numbers that agree: with each other, with the database and with the workers."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import sqlite3
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


def test_the_overview_shows_one_done_per_minute_figure(huey):
    # More completions in the last minute than the run-time sample holds (1,000 jobs)
    now = time.time()
    jobs.add(1, 2)
    drain()
    conn = sqlite3.connect(huey.jobs.path)
    conn.row_factory = sqlite3.Row
    row = dict(conn.execute("SELECT * FROM runner_job WHERE state = 'completed'").fetchone())
    copies = []
    for n in range(1_499):
        finished = now - 30 + n * 0.02
        copies.append({**row, "id": f"{row['id']}-{n}", "started_at": finished - 0.1,
                       "finished_at": finished})
    columns = ", ".join(row)
    conn.executemany(f"INSERT INTO runner_job ({columns}) VALUES "
                     f"({', '.join(':' + c for c in row)})", copies)
    conn.execute("UPDATE runner_job SET finished_at = ? WHERE id = ?", (now - 31, row["id"]))
    conn.commit()
    conn.close()
    huey.jobs.db.close()

    async def scenario(app, pilot):
        strip = str(app.screen.query_one("#summary", Static).render())
        title = str(app.screen.query_one("#queues-title", Static).render())
        row = app.screen.query_one("#queues", KeyedTable).get_row("default")
        shown = {*re.findall(r"done/min:? \[?b?\]?([\d,]+)", strip + title), row[6]}
        assert shown == {"1,500"}

    drive(make_app(db=huey.jobs.path, refresh=60, clock=lambda: now), scenario)
