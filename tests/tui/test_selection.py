"""A refresh that moves or removes rows never hands the next action to another job.

The selection follows its job (by key) when rows arrive, leave or change order;
when the selected job itself leaves the list, nothing is selected until the
cursor moves again, and an action key says so instead of acting on the row
that took its place.
"""

from __future__ import annotations

from collections.abc import Callable

from runner import control
from runner.store.sqlite import SqliteStore
from runner.store.sqlite.db import Database
from runner.store.sqlite.queries import get_job
from tests import jobs
from tests.tui.conftest import drive, settle, wait_poll
from tui.screens.confirm import ConfirmScreen, TypedConfirmScreen
from tui.widgets.keyed_table import KeyedTable


def state(seeded, job_id: str) -> str:
    return get_job(Database(seeded.path, readonly=True), job_id).state


def write(seeded, change: Callable[[SqliteStore], object]) -> None:
    """Change the database through the runner's store, as another process would."""
    db = Database(seeded.path)
    try:
        change(SqliteStore(db))
    finally:
        db.close()


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def refresh(app, pilot) -> None:
    before = app.polls
    await pilot.press("ctrl+r")
    await wait_poll(app, pilot, since=before)


async def jobs_filtered(app, pilot, text: str) -> KeyedTable:
    await pilot.press("2")
    await settle(app, pilot)
    await pilot.press("slash")
    app.screen.query_one("#filter").value = text
    await pilot.press("enter")
    await settle(app, pilot)
    return app.screen.query_one("#jobs", KeyedTable)


async def choose(pilot, table: KeyedTable, key: str) -> None:
    """Walk the cursor to ``key`` with the keys a user would press."""
    await pilot.press("g", *["j"] * table.get_row_index(key))
    assert table.selected_key == key


def test_the_selection_follows_its_job_when_rows_arrive_above(dashboard, seeded, huey):
    dead = seeded.dead[0]

    async def scenario(app, pilot):
        table = await jobs_filtered(app, pilot, "")
        await choose(pilot, table, dead)
        row = table.cursor_row
        for i in range(3):  # newest first: they are listed above the chosen job
            jobs.noop(100 + i)
        huey.jobs.db.close()
        await refresh(app, pilot)
        assert table.row_count == 14
        assert table.selected_key == dead and table.cursor_row == row + 3
        await pilot.press("r")
        await settle(app, pilot)
        assert state(seeded, dead) == "available"
        assert state(seeded, seeded.fatal) == "dead"

    drive(dashboard(), scenario)


def test_the_selection_follows_its_job_when_a_row_above_leaves(dashboard, seeded):
    waiting = seeded.waiting

    async def scenario(app, pilot):
        table = await jobs_filtered(app, pilot, "state:available")
        await choose(pilot, table, waiting[0])
        row = table.cursor_row
        write(seeded, lambda store: control.cancel_job(store, waiting[2]))
        await refresh(app, pilot)
        assert table.selected_key == waiting[0] and table.cursor_row == row - 1
        await pilot.press("c")
        await settle(app, pilot)
        assert state(seeded, waiting[0]) == "cancelled"
        assert [state(seeded, j) for j in (waiting[1], waiting[3])] == ["available"] * 2

    drive(dashboard(), scenario)


def test_an_action_after_the_selected_job_left_the_list_touches_no_other_job(dashboard, seeded):
    dead, fatal = seeded.dead[0], seeded.fatal

    async def scenario(app, pilot):
        table = await jobs_filtered(app, pilot, "state:dead")
        assert table.row_count == 2
        await choose(pilot, table, fatal)
        write(seeded, lambda store: control.retry_job(store, fatal))  # leaves the dead list
        await refresh(app, pilot)
        assert table.row_count == 1
        await pilot.press("r", "d", "c")
        await settle(app, pilot)
        assert state(seeded, dead) == "dead"
        assert not isinstance(app.screen, ConfirmScreen)
        assert table.selected_key is None  # the row that took its place is not chosen
        assert any("left the list" in note for note in notes(app)), notes(app)

    drive(dashboard(), scenario)


def test_moving_the_cursor_after_the_selected_job_left_chooses_again(dashboard, seeded):
    dead, fatal = seeded.dead[0], seeded.fatal

    async def scenario(app, pilot):
        table = await jobs_filtered(app, pilot, "state:dead")
        await choose(pilot, table, fatal)
        write(seeded, lambda store: control.retry_job(store, fatal))
        await refresh(app, pilot)
        assert table.selected_key is None
        await pilot.press("k")  # the only row left: the first move key picks it
        assert table.selected_key == dead
        await pilot.press("r")
        await settle(app, pilot)
        assert state(seeded, dead) == "available"

    drive(dashboard(), scenario)


def test_enter_after_the_selected_job_left_opens_no_other_job(dashboard, seeded):
    fatal = seeded.fatal

    async def scenario(app, pilot):
        table = await jobs_filtered(app, pilot, "state:dead")
        await choose(pilot, table, fatal)
        write(seeded, lambda store: control.retry_job(store, fatal))
        await refresh(app, pilot)
        screen = app.screen
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is screen
        assert any("left the list" in note for note in notes(app)), notes(app)

    drive(dashboard(), scenario)


def test_a_job_that_left_with_most_of_the_list_leaves_no_other_job_selected(
        dashboard, seeded, huey):
    more = [jobs.noop(200 + i).id for i in range(14)]
    huey.jobs.db.close()
    stay = seeded.waiting

    async def scenario(app, pilot):
        table = await jobs_filtered(app, pilot, "state:available queue:default")
        assert table.row_count == 18
        await choose(pilot, table, more[3])
        # 14 of 18 rows go at once: the table is rebuilt rather than edited row by row
        write(seeded, lambda store: control.cancel_jobs(store, more))
        await refresh(app, pilot)
        assert {k.value for k in table.rows} == set(stay)
        await pilot.press("c")
        await settle(app, pilot)
        assert [state(seeded, j) for j in stay] == ["available"] * 4
        assert table.selected_key is None

    drive(dashboard(), scenario)


def test_a_group_action_after_the_selected_group_left_asks_about_no_other_group(
        dashboard, seeded):
    fatal = seeded.fatal

    async def scenario(app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#failures", KeyedTable)
        row = next(i for i in range(table.row_count) if table.get_row_at(i)[3] == "Fatal")
        await pilot.press("g", *["j"] * row)
        write(seeded, lambda store: control.retry_job(store, fatal))  # its group empties
        await refresh(app, pilot)
        assert [table.get_row_at(i)[3] for i in range(table.row_count)] == ["ValueError"]
        await pilot.press("r")
        await settle(app, pilot)
        assert not isinstance(app.screen, TypedConfirmScreen)
        assert any("left the list" in note for note in notes(app)), notes(app)

    drive(dashboard(), scenario)


def test_choosing_another_filter_starts_on_its_first_row_or_keeps_the_job(dashboard, seeded):
    async def scenario(app, pilot):
        table = await jobs_filtered(app, pilot, "")
        await choose(pilot, table, seeded.waiting[1])
        await pilot.press("s")  # all -> available: the chosen job is still listed
        await settle(app, pilot)
        assert table.row_count == 6 and table.selected_key == seeded.waiting[1]
        await pilot.press("s")  # -> scheduled: none
        await settle(app, pilot)
        for _ in range(20):  # on to dead, which the chosen job is not
            if app.screen.filters.state == "dead":
                break
            await pilot.press("s")
            await settle(app, pilot)
        assert table.row_count == 2
        assert table.selected_key == table.get_row_at(0)[0] or table.cursor_row == 0
        assert table.selected_key in seeded.dead  # a list the user chose: its first row

    drive(dashboard(), scenario)
