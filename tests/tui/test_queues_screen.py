"""Queues screen: jobs by state per queue, limits and pause; p pauses and resumes."""

from __future__ import annotations

from runner.store.factory import store_for
from runner.store.sqlite.db import Database
from runner.testing import drain
from tests.conftest import write_settings
from tests.tui import dashboard_jobs
from tests.tui.conftest import drive, settle
from tui.app import make_app
from tui.widgets.keyed_table import KeyedTable

#: The Overview's queue table: queue, waiting, scheduled, retrying, running, oldest, rate.
OVERVIEW_RATE = 6


def paused(path) -> dict[str, bool]:
    db = Database(path, readonly=True)
    try:
        return {p.name: p.paused for p in store_for(db).list_pauses() if p.kind == "queue"}
    finally:
        db.close()


def test_queues_show_their_jobs_and_p_pauses_and_resumes_the_selected_one(seeded, tmp_path):
    settings = write_settings(tmp_path, name="dash.toml",
                              extra='\n[queues.mail]\nmax_size = 50\non_full = "reject"\n')

    async def scenario(app, pilot):
        await pilot.press("7")
        await settle(app, pilot)
        assert app.screen.TITLE == "Queues"
        table = app.screen.query_one("#queues", KeyedTable)
        assert [k.value for k in table.rows] == ["default", "mail"]
        default, mail = table.get_row("default"), table.get_row("mail")
        assert default[:6] == ["default", "4", "0", "0", "0", "[red]2[/]"]
        assert mail[1] == "2" and mail[8] == "max 50 reject" and mail[10] == "active"
        table.move_cursor(row=table.get_row_index("mail"))
        await pilot.press("p")
        await settle(app, pilot)
        assert paused(seeded.path) == {"mail": True}
        assert "paused" in table.get_row("mail")[10] and "(dashboard)" in table.get_row(
            "mail")[10]
        assert "2 queues, 1 paused" in str(app.screen.query_one("#queues-note").render())
        await pilot.press("1")  # the Overview marks it too
        await settle(app, pilot)
        overview = app.screen.query_one("#queues", KeyedTable)
        assert "(paused)" in overview.get_row("mail")[0]
        assert "(paused)" not in overview.get_row("default")[0]
        await pilot.press("7")
        await settle(app, pilot)
        table = app.screen.query_one("#queues", KeyedTable)
        table.move_cursor(row=table.get_row_index("mail"))
        await pilot.press("p")
        await settle(app, pilot)
        assert paused(seeded.path) == {"mail": False}
        assert table.get_row("mail")[10] == "active"

    drive(make_app(db=seeded.path, settings=settings, refresh=60), scenario)


def test_read_only_dashboard_refuses_to_pause(seeded):
    async def scenario(app, pilot):
        await pilot.press("7")
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        assert paused(seeded.path) == {}

    drive(make_app(db=seeded.path, read_only=True, refresh=60), scenario)


def test_the_queues_table_fills_the_screen_down_to_the_status_line(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.press("7")
        await settle(app, pilot)
        table = app.screen.query_one(KeyedTable)
        status = app.screen.query_one("#status")
        # Overview's queue table is kept short; this one takes the whole screen.
        assert status.region.y == app.size.height - 2
        assert table.region.bottom == status.region.y

    drive(dashboard(), scenario, size=(100, 40))


def test_a_queue_that_just_drained_stays_listed_on_the_overview_and_the_queues_view(
        huey, tmp_path):
    # Given a queue no settings name whose burst just finished, and a configured idle one
    settings = write_settings(tmp_path, name="dash.toml", extra="\n[queues.reports]\n")
    for n in range(3):
        dashboard_jobs.send_mail(f"user{n}@example.com")
    drain()
    path = huey.jobs.path
    huey.jobs.db.close()

    async def scenario(app, pilot):
        overview = app.screen.query_one("#queues", KeyedTable)
        assert [k.value for k in overview.rows] == ["default", "mail", "reports"]
        assert overview.get_row("mail")[1] == "0"  # nothing waits now
        assert overview.get_row("mail")[OVERVIEW_RATE] == "3"
        await pilot.press("7")
        await settle(app, pilot)
        table = app.screen.query_one("#queues", KeyedTable)
        assert [k.value for k in table.rows] == ["default", "mail", "reports"]
        assert table.get_row("mail")[1] == "0" and table.get_row("mail")[7] == "3"

    drive(make_app(db=path, settings=settings, refresh=60), scenario)
