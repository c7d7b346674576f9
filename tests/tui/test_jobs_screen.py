"""Jobs: keyset pages to the very last job, either order, a jump to a time, filters by
error, bad filters."""

from __future__ import annotations

from textual.widgets import Input, Static
from textual.widgets._toast import Toast

from tests import jobs
from tests.tui.conftest import drive, settle
from tui.app import make_app
from tui.screens.jobs import PAGE
from tui.widgets.keyed_table import KeyedTable

START = 1_700_000_000.0


def line(app) -> str:
    return str(app.screen.query_one("#filter-line", Static).render())


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def type_into(app, pilot, key: str, text: str) -> None:
    await pilot.press(key)
    await settle(app, pilot)
    app.screen.query_one("#filter", Input).value = text
    await pilot.press("enter")
    await settle(app, pilot)


def timed_jobs(huey, count: int) -> list[str]:
    ids = [jobs.noop(i).id for i in range(count)]
    huey.jobs.db.write(lambda c: c.executemany(
        "UPDATE runner_job SET created_at = ? WHERE id = ?",
        [(START + 60 * i, job_id) for i, job_id in enumerate(ids)]))
    huey.jobs.db.close()
    return ids


def test_pages_reach_the_oldest_job_and_back(huey):
    ids = timed_jobs(huey, 2 * PAGE + 30)

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        assert table.selected_key == ids[-1]
        await pilot.press("right_square_bracket", "right_square_bracket")
        await settle(app, pilot)
        assert table.row_count == 30 and ids[0] in {k.value for k in table.rows}
        assert "201-230 of 230 (last page)" in line(app)
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert notes(app)[-1] == "this is the last page"
        await pilot.press("left_square_bracket")
        await settle(app, pilot)
        assert "101-200" in line(app) and table.row_count == PAGE
        await pilot.press("o")  # oldest first
        await settle(app, pilot)
        assert "sort oldest" in line(app) and table.selected_key == ids[0]

    drive(make_app(db=huey.jobs.path, refresh=60), scenario)


def test_at_jumps_to_a_time(huey):
    ids = timed_jobs(huey, 50)

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        import datetime as dt

        when = dt.datetime.fromtimestamp(START + 20 * 60 + 30).strftime("%Y-%m-%d %H:%M:%S")
        await type_into(app, pilot, "at", when)
        table = app.screen.query_one("#jobs", KeyedTable)
        assert [k.value for k in table.rows][:2] == [ids[20], ids[19]]
        assert "from " in line(app)
        await type_into(app, pilot, "at", "yesterday-ish")
        assert isinstance(app.screen.focused, Input)  # kept open with what was typed
        assert app.screen.query_one("#filter", Input).value == "yesterday-ish"
        assert "cannot read the time 'yesterday-ish'" in notes(app)[-1]

    drive(make_app(db=huey.jobs.path, refresh=60), scenario)


def test_a_bad_state_in_the_filter_is_named_and_nothing_is_lost(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        await type_into(app, pilot, "slash", "state:bogus queue:mail")
        assert notes(app)[-1].startswith("no state 'bogus': use one of available, scheduled")
        assert "no state 'bogus'" in line(app)
        assert app.screen.query_one("#filter", Input).value == "state:bogus queue:mail"
        assert app.screen.filters.state is None  # the old filter still applies
        app.screen.query_one("#filter", Input).value = "state:dead"
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen.query_one("#jobs", KeyedTable).row_count == 2

    drive(dashboard(), scenario)


def test_error_in_the_filter_shows_only_the_jobs_that_failed_with_it(dashboard, seeded):
    # Given two dead jobs: a ValueError ("always fails boom") and a Fatal ("cannot ever work")
    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        fails = next(k.value for k in table.rows if k.value in seeded.dead
                     and k.value != seeded.fatal)
        # When the filter names a part of one error's type, in any case
        await type_into(app, pilot, "slash", "error:valueerror")
        # Then only the job that failed with it is listed, and the filter reads as typed
        assert [k.value for k in table.rows] == [fails]
        assert "filter error:valueerror" in line(app)
        # and a part of the other's message finds the other
        await type_into(app, pilot, "slash", "state:dead error:EVER")
        assert [k.value for k in table.rows] == [seeded.fatal]
        # When the word has no value, or another word names no state, it is refused as before
        await type_into(app, pilot, "slash", "error:")
        assert notes(app)[-1].startswith("'error:' needs a value, e.g. error:")
        await type_into(app, pilot, "slash", "state:bogus error:ever")
        assert notes(app)[-1].startswith("no state 'bogus'")
        assert [k.value for k in table.rows] == [seeded.fatal]  # the old filter still applies

    drive(dashboard(), scenario)


def test_a_filter_with_brackets_is_shown_as_typed(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        await pilot.press("slash")
        app.screen.query_one("#filter", Input).value = "rows[0 C:\\"
        await pilot.press("enter")
        await settle(app, pilot)
        line = str(app.screen.query_one("#filter-line", Static).render())
        assert line.startswith("state all  filter rows[0 C:\\  sort newest  page 1"), line

    drive(dashboard(), scenario)


def test_a_refused_filter_with_brackets_is_told_as_typed(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        await pilot.press("slash")
        app.screen.query_one("#filter", Input).value = "state:[/]"
        await pilot.press("enter")
        await settle(app, pilot)
        toasts = app.screen.query(Toast)
        assert len(toasts) == 1  # shown, not a MarkupError closing the dashboard
        assert "no state '[/]'" in str(toasts.first().render())
        assert app.is_running

    drive(dashboard(), scenario, notifications=True)


def test_a_long_task_name_is_cut_so_the_error_column_stays_on_screen(huey):
    # Given a dead job of a task with a 103-character name
    ids = timed_jobs(huey, 1)
    long_name = "a_really_extraordinarily_long_task_name_" + "x" * 63
    huey.jobs.db.write(lambda c: c.execute(
        "UPDATE runner_job SET task = ?, state = 'dead', error_message = 'boom' WHERE id = ?",
        (long_name, ids[0])))
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        row = dict(zip(table.shown_columns, table.get_row(ids[0]), strict=True))
        # Then its cell is cut with an ellipsis, and the whole row fits 160 cells
        assert row["task"].endswith("…") and len(row["task"]) <= 40, row
        widths = sum(column.get_render_width(table) for column in table.columns.values())
        assert widths <= 160, widths

    drive(make_app(db=huey.jobs.path, refresh=60), scenario, size=(160, 48))


def test_event_and_worker_filters_take_the_short_ids_other_screens_show(huey):
    import time

    from runner import emit
    from runner.store.rows import short_id
    from runner.testing import drain
    from tests import event_handlers  # noqa: F401 - registers the shop handlers

    # Given an event's handler jobs, and a job claimed by worker vm:4242:...
    placed = emit("shop.order.placed", {"n": 1})
    drain(include_scheduled=True)
    store = huey.jobs.store
    store.register("vm:4242:1700000000000", concurrency=1, queues=(), now=time.time())
    running = jobs.noop(1)
    store.claim(now=time.time(), owner="vm:4242:1700000000000", lease_seconds=60, want=1)
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        # When the Jobs list is filtered by the event's short id, and by host/pid
        await type_into(app, pilot, "slash", f"event:{short_id(placed)}")
        assert table.row_count == 3, line(app)  # its three handlers
        await type_into(app, pilot, "slash", "worker:vm/4242")
        assert [k.value for k in table.rows] == [running.id], line(app)

    drive(make_app(db=huey.jobs.path, refresh=60), scenario)
