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
        await pilot.press("r")
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


def test_replay_from_the_events_screen_reaches_the_handlers_the_worker_has_now(
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
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert any("replay of" in n.message and "queued" in n.message
                   for n in app._notifications)

    # When it is replayed from the dashboard and a worker runs the replay job
    drive(make_app(db=path, refresh=60), scenario)
    assert replay_jobs(reader) == [("available", event_id)]
    drain(include_scheduled=True)
    # Then every handler of the worker got the event again, linked to it
    assert Counter(read_records(record_file)) == {"flaky 7 broken": 2, "steady 7": 2,
                                                  "flaky 7 fixed": 1}
    view = {v.id: v for v in event_views(store_for(reader))}[event_id]
    assert (view.deliveries, dict(view.outcomes)) == (
        2, {"flaky": "completed", "steady": "completed"})


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
