"""Each screen against a seeded database: what it shows matches the data."""

from __future__ import annotations

from textual.widgets import Log, Static

from runner.store.sqlite.db import Database
from runner.store.sqlite.queries import counts_by_state
from tests.tui.conftest import drive, settle, wait_poll
from tui.screens.job_detail import JobDetailScreen
from tui.widgets.keyed_table import KeyedTable


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def test_overview_counts_match_the_database(dashboard, seeded):
    states = counts_by_state(Database(seeded.path, readonly=True))

    async def scenario(app, pilot):
        strip = text_of(app, "#summary")
        assert states["available"] == 6 and f"waiting: {states['available']}" in strip
        assert f"dead: {states['dead']}" in strip
        queues = app.screen.query_one("#queues", KeyedTable)
        assert queues.row_count == 2
        assert queues.get_row("mail")[:3] == ["mail", "2", "0"]
        assert queues.get_row("default")[:3] == ["default", "4", "0"]
        nav = app.screen.query_one("#nav").text
        assert "2 Jobs (6 live)" in nav and "3 Failures (2)" in nav

    drive(dashboard(), scenario)


async def show(app, pilot, key: str) -> None:
    await pilot.press(key)
    await settle(app, pilot)


def test_jobs_lists_every_job_and_the_filter_narrows_it(dashboard, seeded):
    async def scenario(app, pilot):
        await show(app, pilot, "2")
        table = app.screen.query_one("#jobs", KeyedTable)
        assert table.row_count == 11
        await show(app, pilot, "slash")
        app.screen.query_one("#filter").value = "queue:mail"
        await pilot.press("enter")
        await settle(app, pilot)
        assert table.row_count == 2
        assert {k.value for k in table.rows} == set(seeded.mail)
        await show(app, pilot, "escape")
        assert table.row_count == 11
        await show(app, pilot, "s")  # all -> available
        assert table.row_count == 6
        assert "1-6 of 6" in text_of(app, "#filter-line")

    drive(dashboard(), scenario)


def test_refresh_keeps_the_cursor_on_its_job(dashboard, seeded, huey):
    from tests import jobs

    async def scenario(app, pilot):
        await show(app, pilot, "2")
        table = app.screen.query_one("#jobs", KeyedTable)
        await pilot.press("j", "j", "j")
        chosen = table.selected_key
        jobs.noop(100)  # a new job appears at the top
        huey.jobs.db.close()
        before = app.polls
        await pilot.press("ctrl+r")
        await wait_poll(app, pilot, since=before)
        assert table.row_count == 12
        assert table.selected_key == chosen
        assert table.cursor_row == 4

    drive(dashboard(), scenario)


def test_enter_opens_the_detail_with_the_traceback(dashboard, seeded):
    async def scenario(app, pilot):
        await show(app, pilot, "2")
        table = app.screen.query_one("#jobs", KeyedTable)
        table.move_cursor(row=table.get_row_index(seeded.dead[0]))
        await show(app, pilot, "enter")
        assert isinstance(app.screen, JobDetailScreen)
        detail = text_of(app, "#detail")
        assert "Traceback (most recent call last)" in detail
        assert "ValueError: always fails boom" in detail
        assert detail.count("attempt 3") >= 1
        await show(app, pilot, "escape")
        assert not isinstance(app.screen, JobDetailScreen)

    drive(dashboard(), scenario)


def test_failures_groups_dead_jobs_by_error(dashboard, seeded):
    async def scenario(app, pilot):
        await show(app, pilot, "3")
        table = app.screen.query_one("#failures", KeyedTable)
        rows = sorted(table.get_row_at(i)[3] for i in range(table.row_count))
        assert rows == ["Fatal", "ValueError"]
        await show(app, pilot, "enter")  # drill into the group on the Jobs screen
        await settle(app, pilot)
        jobs_table = app.screen.query_one("#jobs", KeyedTable)
        assert jobs_table.row_count == 1

    drive(dashboard(), scenario)


def test_schedules_events_and_logs_screens_render_on_any_database(dashboard, seeded):
    async def scenario(app, pilot):
        await show(app, pilot, "4")
        assert app.screen.query_one("#schedules", KeyedTable) is not None
        assert "schedule" in text_of(app, "#schedules-note")
        await show(app, pilot, "5")
        assert "events" in text_of(app, "#events-note")
        await show(app, pilot, "6")
        assert app.screen.query_one(Log) is not None
        await show(app, pilot, "question_mark")
        assert "follow" in str(app.screen.query_one(Static).render())
        await show(app, pilot, "escape")
        await show(app, pilot, "1")
        assert app.current_mode == "overview"

    drive(dashboard(), scenario)


def test_q_quits(dashboard):
    async def scenario(app, pilot):
        await pilot.press("q")
        await pilot.pause()
        assert app._exit_renderables == [] and not app.is_running

    drive(dashboard(), scenario)
