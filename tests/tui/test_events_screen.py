"""Events screen: handler outcomes, unhandled events, replay through the worker."""

from __future__ import annotations

import json
from collections import Counter

from runner import emit
from runner.events.replay import REPLAY_TASK
from runner.readmodel.events import event_views, unhandled_event_count
from runner.store.factory import store_for
from runner.store.sqlite.db import Database
from runner.testing import drain
from tests import event_handlers
from tests.conftest import read_records
from tests.tui.conftest import drive, settle
from tui.app import make_app
from tui.screens.confirm import ConfirmScreen
from tui.widgets.keyed_table import KeyedTable


def test_events_show_outcomes_and_replay_an_unhandled_event(huey, record_file):
    placed = emit("shop.order.placed", {"n": 1})
    lost = emit("nobody.listens", {"x": 1})
    drain(include_scheduled=True)
    path = huey.jobs.path
    reader = Database(path, readonly=True)
    views = {v.id: v for v in event_views(store_for(reader))}
    assert dict(views[placed].outcomes) == {
        "order_broken": "dead", "order_exact": "completed", "order_wild": "completed"}
    assert views[lost].status == "unhandled" and unhandled_event_count(store_for(reader)) == 1
    huey.jobs.db.close()

    async def scenario(app, pilot):
        assert "5 Events (1 unhandled)" in app.screen.query_one("#nav").text
        await pilot.press("5")
        await settle(app, pilot)
        table = app.screen.query_one("#events", KeyedTable)
        assert table.row_count == 2
        await pilot.press("u")
        await settle(app, pilot)
        assert [k.value for k in table.rows] == [lost]
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot)

    drive(make_app(db=path, refresh=60), scenario)
    # The replay is a job for a worker: nothing is delivered by the dashboard itself
    assert replay_jobs(reader) == [("available", lost)]
    drain()  # the worker still has no handler for it: nothing is written
    assert replay_jobs(reader) == [("completed", lost)]
    assert [v.id for v in event_views(store_for(reader), unhandled_only=True)] == [lost]
    assert {v.id: v for v in event_views(store_for(reader))}[lost].deliveries == 1


def replay_jobs(db: Database) -> list[tuple[str, str]]:
    rows = db.query("SELECT state, args FROM runner_job WHERE task = ? ORDER BY rowid",
                    (REPLAY_TASK,))
    return [(state, json.loads(args)["args"][0][0]) for state, args in rows]


def test_replay_to_every_handler_from_the_events_screen_reaches_those_the_worker_has_now(
        huey, record_file, monkeypatch):
    # Given an event whose handler "flaky" died, and the handler fixed since
    monkeypatch.setitem(event_handlers.FIXED, "flaky", False)
    event_id = emit("fix.me", {"n": 7})
    drain(include_scheduled=True)
    monkeypatch.setitem(event_handlers.FIXED, "flaky", True)
    path = huey.jobs.path
    reader = Database(path, readonly=True)

    async def scenario(app, pilot):
        await pilot.press("5")
        await settle(app, pilot)
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "every handler" in str(app.screen.question)
        await pilot.press("y")
        await settle(app, pilot)
        assert any("replay of" in n.message and "queued" in n.message
                   for n in app._notifications)

    # When it is replayed to every handler from the dashboard and a worker runs the replay job
    drive(make_app(db=path, refresh=60), scenario)
    assert replay_jobs(reader) == [("available", event_id)]
    drain(include_scheduled=True)
    # Then every handler of the worker got the event again, linked to it
    assert Counter(read_records(record_file)) == {"flaky 7 broken": 2, "steady 7": 2,
                                                  "flaky 7 fixed": 1}
    view = {v.id: v for v in event_views(store_for(reader))}[event_id]
    assert (view.deliveries, dict(view.outcomes)) == (
        2, {"flaky": "completed", "steady": "completed"})


async def press_replay(app, pilot) -> None:
    """``r`` on the selected event, saying yes to a question if one is asked."""
    await pilot.press("r")
    await pilot.pause()
    if isinstance(app.screen, ConfirmScreen):
        await pilot.press("y")
    await settle(app, pilot)


def handler_jobs(db: Database, event_id: str) -> Counter:
    """How many jobs each handler has for the event (the first delivery and replays)."""
    return Counter(task for (task,) in db.query(
        "SELECT task FROM runner_job WHERE event_id = ?", (event_id,)))


def test_r_replays_an_event_only_to_its_failed_handlers_and_twice_delivers_once(
        huey, record_file, monkeypatch):
    # Given an event with two handlers: "steady" completed, "flaky" died and was fixed since
    monkeypatch.setitem(event_handlers.FIXED, "flaky", False)
    event_id = emit("fix.me", {"n": 8})
    drain(include_scheduled=True)
    monkeypatch.setitem(event_handlers.FIXED, "flaky", True)
    path = huey.jobs.path
    reader = Database(path, readonly=True)
    first = handler_jobs(reader, event_id)
    assert set(first) == {"flaky", "steady"}
    said: list[str] = []

    async def scenario(app, pilot):
        await pilot.press("5")
        await settle(app, pilot)
        # When r is pressed twice before a worker runs the replay
        await press_replay(app, pilot)
        await press_replay(app, pilot)
        said.extend(n.message for n in app._notifications)

    drive(make_app(db=path, refresh=60), scenario)
    drain(include_scheduled=True)
    # Then the failed handler got the event once more, the completed one not again
    assert Counter(read_records(record_file)) == {"flaky 8 broken": 2, "steady 8": 1,
                                                  "flaky 8 fixed": 1}
    assert handler_jobs(reader, event_id) - first == Counter({"flaky": 1})
    view = {v.id: v for v in event_views(store_for(reader))}[event_id]
    assert (view.deliveries, dict(view.outcomes)) == (
        2, {"flaky": "completed", "steady": "completed"})
    assert any("replay of" in m and "failed" in m for m in said)

    # And once nothing has failed any more, r says so and writes nothing
    replays = replay_jobs(reader)

    async def again(app, pilot):
        await pilot.press("5")
        await settle(app, pilot)
        await press_replay(app, pilot)
        assert any("nothing failed" in n.message for n in app._notifications)

    drive(make_app(db=path, refresh=60), again)
    assert replay_jobs(reader) == replays


def test_r_on_an_event_whose_handlers_all_completed_writes_nothing(huey, record_file,
                                                                   monkeypatch):
    # Given an event every handler of which completed
    monkeypatch.setitem(event_handlers.FIXED, "flaky", True)
    event_id = emit("fix.me", {"n": 9})
    drain(include_scheduled=True)
    path = huey.jobs.path
    reader = Database(path, readonly=True)
    jobs_before = reader.query("SELECT count(*) FROM runner_job")[0][0]

    async def scenario(app, pilot):
        await pilot.press("5")
        await settle(app, pilot)
        # When r is pressed on it
        await press_replay(app, pilot)
        # Then the dashboard says nothing failed
        assert any("nothing failed" in n.message for n in app._notifications)

    drive(make_app(db=path, refresh=60), scenario)
    # And nothing was written: no replay job, no delivery
    assert replay_jobs(reader) == []
    assert reader.query("SELECT count(*) FROM runner_job")[0][0] == jobs_before
    assert {v.id: v for v in event_views(store_for(reader))}[event_id].deliveries == 1


def test_enter_shows_the_payload_and_h_the_handler_jobs(huey, record_file):
    from textual.widgets import Static

    from tui.screens.event_detail import EventDetailScreen

    placed = emit("shop.order.placed", {"n": 7, "customer": "ada"})
    drain(include_scheduled=True)
    path = huey.jobs.path
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await pilot.press("5")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, EventDetailScreen)
        text = str(app.screen.query_one("#event-detail", Static).render())
        assert '"customer": "ada"' in text and '"n": 7' in text
        assert "order_broken" in text and "dead" in text and "order_exact" in text
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard and '"customer"' in app.clipboard
        await pilot.press("h")
        await settle(app, pilot)
        await settle(app, pilot)
        assert app.current_mode == "jobs"
        jobs_table = app.screen.query_one("#jobs", KeyedTable)
        assert jobs_table.row_count == 3  # one job per handler
        assert app.screen.filters.event_id == placed

    drive(make_app(db=path, refresh=60), scenario)
