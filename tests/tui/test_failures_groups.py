"""Failures: messages that differ only in numbers make one group, expandable to each."""

from __future__ import annotations

import time

from textual.widgets import Input, Static

from runner.control import discard_jobs
from runner.readmodel import failures
from runner.readmodel.failures import mask_numbers
from runner.store.factory import open_store
from runner.testing import drain
from tests import jobs
from tests.tui import dashboard_jobs
from tests.tui.conftest import drive, settle, wait_poll
from tui.app import make_app
from tui.screens.confirm import TypedConfirmScreen
from tui.screens.failures import FailuresScreen
from tui.widgets.keyed_table import KeyedTable


def rows(table: KeyedTable) -> list[list]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_numbers_are_masked():
    assert mask_numbers("host:12 after 3.5s (0x7f3a)") == "host:# after #s (#)"
    assert mask_numbers(None) is None


def test_host_numbers_make_one_group_that_expands_to_the_exact_messages(huey):
    failing = [jobs.always_fails(f"host:{i}").id for i in range(1, 7)]
    other = jobs.fatal_fails().id
    drain(include_scheduled=True)
    path = huey.jobs.path
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#failures", KeyedTable)
        shown = rows(table)
        assert len(shown) == 2
        assert shown[0][0] == "6" and "always fails host:#" in shown[0][4]
        assert "(6 messages)" in shown[0][4] and shown[0][3].startswith("▶")
        table.move_cursor(row=0)
        await pilot.press("space")
        await pilot.pause()
        shown = rows(table)
        assert len(shown) == 8
        assert sorted(r[4] for r in shown[1:7]) == [f"always fails host:{i}" for i in range(1, 7)]
        assert all(r[0] == "1" for r in shown[1:7])
        assert "Fatal" in shown[7][3]
        # enter on one exact message lists its jobs only
        table.move_cursor(row=1)
        message = shown[1][4]
        await pilot.press("enter")
        await settle(app, pilot)
        await settle(app, pilot)
        listed = app.screen.query_one("#jobs", KeyedTable)
        assert listed.row_count == 1
        assert listed.selected_key == failing[int(message.rsplit(":", 1)[1]) - 1]
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#failures", KeyedTable)
        table.move_cursor(row=0)
        await pilot.press("space")  # fold again
        await pilot.pause()
        assert table.row_count == 2
        await pilot.press("r")  # retry the whole masked group
        await pilot.pause()
        assert isinstance(app.screen, TypedConfirmScreen)  # the count must be typed
        assert "[b]6[/]" in app.screen.question
        app.screen.query_one(Input).value = "6"
        await pilot.press("enter")
        await settle(app, pilot)
        assert [r[3].strip() for r in rows(table)] == ["Fatal"]

    drive(make_app(db=path, refresh=60), scenario)
    assert other


def test_past_the_cap_the_newest_failed_jobs_are_grouped_and_the_screen_says_so(
        huey, monkeypatch):
    # Given more failed jobs than the screen groups, the newest two failing another way
    monkeypatch.setattr(failures, "FAILURE_CAP", 2)
    for label in ("old", "old"):
        jobs.always_fails(label)
    drain(include_scheduled=True)
    newest = [jobs.fatal_fails().id for _ in range(2)]
    drain()
    path = huey.jobs.path
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        # Then only the newest are counted, their count marked as a floor, and said
        shown = rows(app.screen.query_one("#failures", KeyedTable))
        assert [(r[0], r[3].strip()) for r in shown] == [("2+", "Fatal")]
        scope = str(app.screen.query_one("#failures-scope", Static).render())
        assert "the newest 2 " in scope and "of more than 2" in scope
        # And once the newest are discarded, no more than the cap are left: all counted
        writer = open_store(path)
        try:
            assert discard_jobs(writer, newest) == 2
        finally:
            writer.close()
        app.poll_now()
        await settle(app, pilot)
        shown = rows(app.screen.query_one("#failures", KeyedTable))
        assert [(r[0], r[4]) for r in shown] == [("2", "always fails old")]
        assert "newest" not in str(app.screen.query_one("#failures-scope", Static).render())

    drive(make_app(db=path, refresh=60), scenario)


def test_a_group_retry_past_the_cap_reaches_every_failed_job_of_the_group(huey, monkeypatch):
    # Given five jobs failing as "host:#", of which the screen groups only the newest two
    monkeypatch.setattr(failures, "FAILURE_CAP", 2)
    older = [jobs.always_fails(f"host:{i}").id for i in range(1, 4)]
    drain(include_scheduled=True)
    newest = [jobs.always_fails(f"host:{i}").id for i in range(4, 6)]
    drain(include_scheduled=True)
    path = huey.jobs.path
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#failures", KeyedTable)
        assert [(r[0], r[4].split("  ")[0]) for r in rows(table)] == [
            ("2+", "always fails host:#")]
        table.move_cursor(row=0)
        # When the group is retried
        await pilot.press("r")
        await settle(app, pilot)
        assert isinstance(app.screen, TypedConfirmScreen)
        # Then the count to type is every failed job of the group, past the cap
        assert "[b]5[/]" in app.screen.question
        app.screen.query_one(Input).value = "5"
        await pilot.press("enter")
        await settle(app, pilot)
        assert rows(table) == []

    drive(make_app(db=path, refresh=60), scenario)
    reader = open_store(path)
    try:
        assert {reader.get_job(i).state for i in older + newest} == {"available"}
    finally:
        reader.close()


def test_enter_on_one_message_lists_and_acts_on_exactly_that_errors_jobs(huey):
    # Given jobs failing with Fatal "bad input 1", with a message that contains it
    # ("bad input 12", the same group's shape) and with the same message as a ValueError
    mine = [dashboard_jobs.rejects_input(1).id for _ in range(2)]
    longer = dashboard_jobs.rejects_input(12).id
    other_type = dashboard_jobs.fails_on_input(1).id
    drain()
    path = huey.jobs.path
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#failures", KeyedTable)
        shown = rows(table)
        table.move_cursor(row=[r[3].strip(" ▶") for r in shown].index("Fatal"))
        await pilot.press("space")
        await pilot.pause()
        shown = rows(table)
        # When enter is pressed on the message "bad input 1"
        table.move_cursor(row=[r[4] for r in shown].index("bad input 1"))
        await pilot.press("enter")
        await settle(app, pilot)
        await settle(app, pilot)
        # Then the Jobs screen lists exactly the jobs of that error type and message
        listed = app.screen.query_one("#jobs", KeyedTable)
        assert {row.key.value for row in listed.ordered_rows} == set(mine)
        # And R counts and retries exactly those
        await pilot.press("R")
        await settle(app, pilot)
        assert isinstance(app.screen, TypedConfirmScreen)
        assert "[b]2[/]" in app.screen.question
        app.screen.query_one(Input).value = "2"
        await pilot.press("enter")
        await settle(app, pilot)

    drive(make_app(db=path, refresh=60), scenario)
    reader = open_store(path)
    try:
        assert [reader.get_job(i).state for i in mine] == ["available", "available"]
        assert [reader.get_job(i).state for i in (longer, other_type)] == ["dead", "dead"]
    finally:
        reader.close()


def test_a_group_of_thousands_of_messages_expands_to_a_bounded_list_and_keeps_refreshing(huey):
    # Given 3,000 jobs dead with as many messages of one shape ("bad input #")
    dashboard_jobs.rejects_input.map([(i,) for i in range(3000)])
    assert drain() == 3000
    path = huey.jobs.path
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#failures", KeyedTable)
        assert table.row_count == 1
        # When the group is expanded
        await pilot.press("space")
        await pilot.pause()
        # Then it shows its most frequent messages up to a bound, and a row for the rest
        shown = rows(table)
        listed = FailuresScreen.MESSAGES_SHOWN
        assert len(shown) == 1 + listed + 1
        assert "+2,900 more messages" in shown[-1][4]
        # And refreshes go on, each changing every row's age
        polls = app.polls
        app.clock = lambda: time.time() + 90  # every "last failed" reads anew
        for _ in range(2):
            app.poll_now()
            await wait_poll(app, pilot, timeout=10)
        assert app.polls >= polls + 2 and len(rows(table)) == 1 + listed + 1
        # And the row for the rest folds the group as the others do
        table.move_cursor(row=table.row_count - 1)
        await pilot.press("space")
        await pilot.pause()
        assert table.row_count == 1

    drive(make_app(db=path, refresh=60), scenario)
