"""Events screen: handler outcomes, unhandled events, replay through the worker."""

from __future__ import annotations

from runner import emit
from runner.readmodel.events import event_views, unhandled_event_count
from runner.store.db import Database
from runner.testing import drain
from tests import event_handlers  # noqa: F401 - registers the handlers
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
    views = {v.id: v for v in event_views(reader)}
    assert dict(views[placed].outcomes) == {
        "order_broken": "dead", "order_exact": "completed", "order_wild": "completed"}
    assert views[lost].status == "unhandled" and unhandled_event_count(reader) == 1
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
    assert event_views(reader, unhandled_only=True) == []  # pending again
    drain()  # the worker dispatches it again: still no handler, unhandled once more
    assert [v.id for v in event_views(reader, unhandled_only=True)] == [lost]
    assert {v.id: v for v in event_views(reader)}[lost].deliveries == 1


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
