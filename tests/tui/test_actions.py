"""Keys that write: they change the database through runner.control, unless read-only."""

from __future__ import annotations

import time

from runner.store.sqlite.db import Database
from runner.store.sqlite.queries import get_job
from tests.tui.conftest import drive, settle
from tui.screens.confirm import ConfirmScreen, TypedConfirmScreen
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


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


def test_read_only_hides_and_refuses_retry_saying_so_on_each_key(dashboard, seeded):
    dead = seeded.dead[0]

    async def scenario(app, pilot):
        await on_jobs_row(app, pilot, dead)
        await pilot.press("r", "d", "R")
        await settle(app, pilot)
        assert state(seeded, dead) == "dead"
        assert not isinstance(app.screen, ConfirmScreen)
        shown = {b.binding.key for b in app.active_bindings.values() if b.binding.show}
        assert "r" not in shown and "d" not in shown and "R" not in shown
        refused = [n for n in notes(app) if n.startswith("read-only: actions are off")]
        assert len(refused) == 3
        await pilot.press("s")  # not a write key: no message
        await settle(app, pilot)
        assert len([n for n in notes(app) if n.startswith("read-only")]) == 3

    drive(dashboard(read_only=True), scenario)


def test_actions_false_in_the_settings_turns_actions_off(seeded, tmp_path):
    from tui.app import make_app

    settings = tmp_path / "dash.toml"
    settings.write_text(f'[runner]\ndatabase = "{seeded.path}"\n\n[tui]\nactions = false\n')
    dead = seeded.dead[0]

    async def scenario(app, pilot):
        await on_jobs_row(app, pilot, dead)
        await pilot.press("r")
        await settle(app, pilot)
        assert state(seeded, dead) == "dead"
        assert "read-only: actions are off ([tui] actions = false)" in notes(app)

    drive(make_app(settings=settings, refresh=60.0), scenario)


def test_a_non_boolean_actions_setting_is_refused(seeded, tmp_path):
    import pytest

    from runner.errors import ConfigError
    from tui.app import make_app

    settings = tmp_path / "dash.toml"
    settings.write_text(f'[runner]\ndatabase = "{seeded.path}"\n\n[tui]\nactions = "no"\n')
    with pytest.raises(ConfigError, match=r"\[tui\] actions: expected true or false, got 'no'"):
        make_app(settings=settings)


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


async def type_answer(app, pilot, text: str) -> None:
    from textual.widgets import Input

    app.screen.query_one(Input).value = text
    await pilot.press("enter")
    await settle(app, pilot)


async def ask_bulk(app, pilot, key: str, **filters) -> None:
    from runner.store.sqlite.queries import JobFilter

    await pilot.press("2")
    await settle(app, pilot)
    app.screen.set_filter(JobFilter(**filters))
    await settle(app, pilot)
    await pilot.press(key)
    await settle(app, pilot)
    assert isinstance(app.screen, TypedConfirmScreen)


def test_bulk_retry_states_the_count_and_acts_on_the_filtered_set(dashboard, seeded):
    async def scenario(app, pilot):
        await ask_bulk(app, pilot, "R", state="dead")
        assert "[b]2[/] dead jobs" in app.screen.question
        await pilot.press("y")  # a bulk action is not one key away
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, TypedConfirmScreen)
        await type_answer(app, pilot, "2")
        assert {state(seeded, j) for j in seeded.dead} == {"available"}
        assert {state(seeded, j) for j in seeded.completed} == {"completed"}
        assert "retry all: 2 of 2 jobs" in notes(app)

    drive(dashboard(), scenario)


def test_bulk_retry_without_a_state_takes_failed_jobs_only(dashboard, seeded):
    async def scenario(app, pilot):
        await ask_bulk(app, pilot, "R")
        assert "[b]2[/] dead/retrying/cancelled jobs" in app.screen.question
        assert "No filter" in app.screen.question
        await type_answer(app, pilot, "2")
        assert {state(seeded, j) for j in seeded.dead} == {"available"}
        assert {state(seeded, j) for j in seeded.completed} == {"completed"}

    drive(dashboard(), scenario)


def test_bulk_retry_of_completed_jobs_needs_the_state_named(dashboard, seeded):
    async def scenario(app, pilot):
        await ask_bulk(app, pilot, "R", state="completed")
        assert "[b]3[/] completed jobs" in app.screen.question
        await type_answer(app, pilot, "3")
        assert {state(seeded, j) for j in seeded.completed} == {"available"}

    drive(dashboard(), scenario)


def test_bulk_discard_with_a_wrong_count_typed_does_nothing(dashboard, seeded):
    async def scenario(app, pilot):
        await ask_bulk(app, pilot, "D")
        # 6 waiting and 2 dead jobs can be discarded; completed ones cannot
        assert "[b]8[/] available/scheduled/retrying/dead jobs" in app.screen.question
        await type_answer(app, pilot, "100")
        assert isinstance(app.screen, TypedConfirmScreen)
        await pilot.press("escape")
        await settle(app, pilot)
        assert {state(seeded, j) for j in seeded.waiting} == {"available"}
        assert {state(seeded, j) for j in seeded.dead} == {"dead"}

    drive(dashboard(), scenario)


def test_bulk_retry_of_a_state_that_cannot_be_retried_says_so(dashboard, seeded):
    async def scenario(app, pilot):
        from runner.store.sqlite.queries import JobFilter

        await pilot.press("2")
        await settle(app, pilot)
        app.screen.set_filter(JobFilter(state="available"))
        await settle(app, pilot)
        await pilot.press("R")
        await settle(app, pilot)
        assert not isinstance(app.screen, TypedConfirmScreen)
        assert any(n.startswith("cannot retry: available jobs cannot be retried")
                   for n in notes(app)), notes(app)

    drive(dashboard(), scenario)


def test_bulk_discard_of_a_queue_filter_discards_that_queue_only(dashboard, seeded):
    async def scenario(app, pilot):
        await ask_bulk(app, pilot, "D", queue="mail")
        await type_answer(app, pilot, "2")
        assert {state(seeded, j) for j in seeded.mail} == {"cancelled"}
        assert {state(seeded, j) for j in seeded.waiting} == {"available"}
        assert any("discard all: 2 of 2 jobs" in n.message for n in app._notifications)

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
        short = seeded.completed[0][-12:]
        assert notes(app)[-1].startswith(f"cannot cancel {short}: job ")
        assert not any(n.startswith(f"cancelled {short}") for n in notes(app))

    drive(dashboard(), scenario)


def test_retry_from_the_failures_screen_retries_the_whole_group(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#failures", KeyedTable)
        fatal_row = next(i for i in range(table.row_count) if table.get_row_at(i)[3] == "Fatal")
        table.move_cursor(row=fatal_row)
        await pilot.press("r")
        await settle(app, pilot)
        await type_answer(app, pilot, "1")
        assert state(seeded, seeded.fatal) == "available"
        assert state(seeded, seeded.dead[0]) == "dead"
        assert [table.get_row_at(i)[3] for i in range(table.row_count)] == ["ValueError"]

    drive(dashboard(), scenario)


def test_c_on_a_running_job_asks_its_worker_to_stop_it(dashboard, seeded):
    from runner.store.sqlite import SqliteStore

    db = Database(seeded.path)
    store = SqliteStore(db)
    # A live worker (of another host: its fresh heartbeat says it is alive) runs the job
    store.register("other-host:1:1", concurrency=1, queues=(), now=time.time())
    [running] = store.claim(now=time.time(), owner="other-host:1:1", lease_seconds=60,
                            want=1).claimed
    db.close()

    async def scenario(app, pilot):
        await on_jobs_row(app, pilot, running.id)
        await pilot.press("c")
        await settle(app, pilot)
        assert any("it is running: its worker stops it" in note for note in notes(app))

    drive(dashboard(), scenario)
    reader = SqliteStore(Database(seeded.path, readonly=True))
    [(job_id, by)] = reader.cancel_requests([running.id]).items()
    assert job_id == running.id and by.endswith("(dashboard)")
    assert state(seeded, running.id) == "executing"  # until its worker settles it


def test_a_typed_answer_with_brackets_is_repeated_as_typed(dashboard, seeded):
    async def scenario(app, pilot):
        await ask_bulk(app, pilot, "D")
        await type_answer(app, pilot, "[/] [8")
        assert isinstance(app.screen, TypedConfirmScreen)
        choices = str(app.screen.query_one("#choices").render())
        assert choices.startswith("[/] [8 is not 8: type 8 to go ahead"), choices
        await pilot.press("escape")
        await settle(app, pilot)
        assert {state(seeded, j) for j in seeded.dead} == {"dead"}

    drive(dashboard(), scenario)


def test_a_group_retry_leaves_jobs_that_failed_after_the_count_alone(dashboard, seeded):
    from runner.testing import drain
    from tests import jobs

    async def scenario(app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#failures", KeyedTable)
        row = next(i for i in range(table.row_count) if table.get_row_at(i)[3] == "ValueError")
        table.move_cursor(row=row)
        await pilot.press("r")
        await settle(app, pilot)
        assert isinstance(app.screen, TypedConfirmScreen) and "[b]1[/]" in app.screen.question
        later = jobs.always_fails("boom").id  # fails the same way while the question is open
        drain(include_scheduled=True)
        assert state(seeded, later) == "dead"
        await type_answer(app, pilot, "1")
        assert state(seeded, seeded.dead[0]) == "available"
        assert state(seeded, later) == "dead"  # not counted, not asked about: left alone

    drive(dashboard(), scenario)
