"""Keys that write: they change the database through runner.control, unless read-only."""

from __future__ import annotations

from runner.store.db import Database
from runner.store.queries import get_job
from tests.tui.conftest import drive, settle
from tui.screens.confirm import ConfirmScreen
from tui.widgets.keyed_table import KeyedTable


def state(seeded, job_id: str) -> str:
    return get_job(Database(seeded.path, readonly=True), job_id).state


async def on_jobs_row(app, pilot, job_id: str) -> None:
    await pilot.press("2")
    await settle(app, pilot)
    table = app.screen.query_one("#jobs", KeyedTable)
    table.move_cursor(row=table.get_row_index(job_id))
    await pilot.pause()


def test_r_on_a_dead_job_makes_it_waiting_again(dashboard, seeded):
    dead = seeded.dead[0]

    async def scenario(app, pilot):
        await on_jobs_row(app, pilot, dead)
        await pilot.press("r")
        await settle(app, pilot)
        assert state(seeded, dead) == "available"
        table = app.screen.query_one("#jobs", KeyedTable)
        assert "available" in str(table.get_row(dead)[3])

    drive(dashboard(), scenario)


def test_read_only_hides_and_refuses_retry(dashboard, seeded):
    dead = seeded.dead[0]

    async def scenario(app, pilot):
        await on_jobs_row(app, pilot, dead)
        await pilot.press("r", "d", "R")
        await settle(app, pilot)
        assert state(seeded, dead) == "dead"
        assert not isinstance(app.screen, ConfirmScreen)
        keys = {b.binding.key for b in app.active_bindings.values()}
        assert "r" not in keys and "d" not in keys

    drive(dashboard(read_only=True), scenario)


def test_discard_asks_first_and_n_keeps_the_job(dashboard, seeded):
    waiting = seeded.waiting[0]

    async def scenario(app, pilot):
        await on_jobs_row(app, pilot, waiting)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(app, pilot)
        assert state(seeded, waiting) == "available"
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert state(seeded, waiting) == "cancelled"

    drive(dashboard(), scenario)


def test_bulk_retry_states_the_count_and_acts_on_the_filtered_set(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        app.screen.set_filter(app.screen.filters.__class__(state="dead"))
        await settle(app, pilot)
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "2[/] jobs" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert {state(seeded, j) for j in seeded.dead} == {"available"}
        assert {state(seeded, j) for j in seeded.completed} == {"completed"}

    drive(dashboard(), scenario)


def test_c_cancels_a_waiting_job_and_refuses_a_completed_one(dashboard, seeded):
    async def scenario(app, pilot):
        await on_jobs_row(app, pilot, seeded.mail[0])
        await pilot.press("c")
        await settle(app, pilot)
        assert state(seeded, seeded.mail[0]) == "cancelled"
        table = app.screen.query_one("#jobs", KeyedTable)
        table.move_cursor(row=table.get_row_index(seeded.completed[0]))
        await pilot.press("c")
        await settle(app, pilot)
        assert state(seeded, seeded.completed[0]) == "completed"

    drive(dashboard(), scenario)


def test_retry_from_the_failures_screen_retries_the_whole_group(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#failures", KeyedTable)
        fatal_row = next(i for i in range(table.row_count) if table.get_row_at(i)[3] == "Fatal")
        table.move_cursor(row=fatal_row)
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert state(seeded, seeded.fatal) == "available"
        assert state(seeded, seeded.dead[0]) == "dead"
        assert [table.get_row_at(i)[3] for i in range(table.row_count)] == ["ValueError"]

    drive(dashboard(), scenario)
