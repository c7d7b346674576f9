"""Jobs screen order: newest/oldest, duration, attempts, by key and by header click."""

from __future__ import annotations

import sqlite3

from textual.widgets import Static

from tests.tui.conftest import drive, settle
from tui.format import relative
from tui.widgets.keyed_table import KeyedTable


def set_run_times(path, runs: dict[str, tuple[float, float]]) -> None:
    with sqlite3.connect(path) as conn:
        for job_id, (started, finished) in runs.items():
            conn.execute("UPDATE runner_job SET started_at = ?, finished_at = ? WHERE id = ?",
                         (started, finished, job_id))
    conn.close()


def keys(table: KeyedTable) -> list[str]:
    return [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]


async def click_header(app, pilot, table: KeyedTable, column: str) -> None:
    x = 0
    for key, col in table.columns.items():
        if key.value == column:
            break
        x += col.get_render_width(table)
    await pilot.click("#jobs", offset=(x + 2, 0))
    await settle(app, pilot)


def test_o_cycles_newest_oldest_duration_attempts(dashboard, seeded):
    a, b, c = seeded.completed
    set_run_times(seeded.path, {a: (1000.0, 1002.0), b: (1000.0, 1090.0), c: (1000.0, 1030.0)})

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        newest = keys(table)
        assert newest[-1] == a  # the first job enqueued comes last
        await pilot.press("o")
        await settle(app, pilot)
        assert keys(table) == newest[::-1]
        assert "sort oldest" in str(app.screen.query_one("#filter-line", Static).render())
        await pilot.press("o")
        await settle(app, pilot)
        assert keys(table)[:3] == [b, c, a]
        assert str(table.columns[next(k for k in table.columns if k.value == "duration")]
                   .label) == "duration ▼"
        await pilot.press("o")
        await settle(app, pilot)
        assert keys(table)[0] == seeded.dead[0]  # three attempts, the most of any job
        assert table.get_row(seeded.dead[0])[4] == "3/3"
        await pilot.press("o")
        await settle(app, pilot)
        assert keys(table) == newest

    drive(dashboard(), scenario)


def test_clicking_a_header_sorts_by_it(dashboard, seeded):
    a, b, c = seeded.completed
    set_run_times(seeded.path, {a: (1000.0, 1002.0), b: (1000.0, 1090.0), c: (1000.0, 1030.0)})

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        newest = keys(table)
        await click_header(app, pilot, table, "duration")
        assert app.screen.sort == "duration"
        assert keys(table)[:3] == [b, c, a]
        await click_header(app, pilot, table, "attempt")
        assert keys(table)[0] == seeded.dead[0]
        await click_header(app, pilot, table, "enqueued")
        assert keys(table) == newest
        await click_header(app, pilot, table, "enqueued")  # again: oldest first
        assert keys(table) == newest[::-1]

    drive(dashboard(), scenario)


def test_job_times_read_as_relative(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        enqueued = table.get_row(seeded.waiting[0])[5]
        assert enqueued == "now" or enqueued.endswith(" ago")
        assert table.get_row(seeded.waiting[0])[6] == "-"  # never started

    drive(dashboard(), scenario)


def test_relative_reads_past_and_future():
    assert relative(1000.0, 1180.0) == "3m ago"
    assert relative(1012.0, 1000.0) == "in 12s"
    assert relative(1000.4, 1000.0) == "now"
    assert relative(None, 1000.0) == "-"
    assert relative(0.0, 2 * 3600 + 600.0) == "2h10m ago"


def test_a_discarded_dead_job_keeps_its_place_in_the_duration_sort(dashboard, seeded):
    # Given completed jobs that ran 2, 90 and 30 s, and a dead one that ran 1 ms
    a, b, c = seeded.completed
    dead = seeded.dead[0]
    set_run_times(seeded.path, {a: (1000.0, 1002.0), b: (1000.0, 1090.0), c: (1000.0, 1030.0),
                                dead: (1000.0, 1000.001)})

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        # When the dead job is discarded (asks first) and the list is sorted by duration
        table.move_cursor(row=table.get_row_index(dead))
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        app.screen.set_sort("duration")
        await settle(app, pilot)
        # Then it still shows its 1 ms run, below the longer ones
        assert "cancelled" in str(table.get_row(dead)[3])
        assert keys(table)[:3] == [b, c, a]
        assert keys(table).index(dead) > 2

    drive(dashboard(), scenario)
