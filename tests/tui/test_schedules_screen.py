"""Schedules screen: rows from runner_schedule; p pauses and resumes, t runs now."""

from __future__ import annotations

import time

from runner.readmodel.schedules import schedule_views
from runner.scheduling.definitions import registry
from runner.scheduling.scheduler import sync_item
from runner.store.factory import store_for
from runner.store.sqlite import schedules as schedule_store
from runner.store.sqlite.db import Database
from tests import sched_jobs  # noqa: F401 - registers the test schedules
from tests.conftest import write_settings
from tests.tui.conftest import drive, settle
from tui.app import make_app
from tui.screens.confirm import ConfirmScreen
from tui.widgets.keyed_table import KeyedTable


def test_schedules_pause_resume_and_run_now(huey, tmp_path):
    now = time.time()
    for name in ("quarter_hourly", "every_second", "async_hourly"):
        schedule_store.ensure_schedule(huey.jobs.db, sync_item(registry.get(name), now), now=now)
    huey.jobs.db.close()
    settings = write_settings(tmp_path, name="dash.toml")
    settings.write_text(settings.read_text().replace(
        'imports = ["tests.jobs"]', 'imports = ["tests.jobs", "tests.sched_jobs"]'))
    reader = Database(huey.jobs.path, readonly=True)

    def row(name):
        return schedule_store.get_schedule(reader, name)

    async def scenario(app, pilot):
        assert "4 Schedules (3)" in app.screen.query_one("#nav").text
        await pilot.press("4")
        await settle(app, pilot)
        table = app.screen.query_one("#schedules", KeyedTable)
        assert [k.value for k in table.rows] == ["async_hourly", "every_second",
                                                 "quarter_hourly"]
        assert table.get_row("quarter_hourly")[2] == "*/15 * * * *"
        table.move_cursor(row=table.get_row_index("quarter_hourly"))
        await pilot.press("p")
        await settle(app, pilot)
        assert row("quarter_hourly").paused
        assert "paused" in str(table.get_row("quarter_hourly")[8])
        # a paused schedule does not fire: no (soon past) next fire time is shown
        assert str(table.get_row("quarter_hourly")[4]) == "[yellow]paused[/]"
        await pilot.press("p")
        await settle(app, pilot)
        assert not row("quarter_hourly").paused
        await pilot.press("n")
        await settle(app, pilot)
        assert row("quarter_hourly").skip_next
        before = row("quarter_hourly").next_fire_at
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot)
        after = row("quarter_hourly")
        assert after.last_job_id is not None and after.next_fire_at == before
        assert after.last_outcome == "available"

    drive(make_app(settings=settings, refresh=60), scenario)
    views = schedule_views(store_for(reader))
    assert {v.name for v in views} == {"quarter_hourly", "every_second", "async_hourly"}


def test_next_fire_reads_relative_with_the_schedules_own_zone(huey, tmp_path):
    import dataclasses
    import datetime as dt

    now = time.time()
    due = now + 125
    item = dataclasses.replace(sync_item(registry.get("quarter_hourly"), now),
                               tz="Asia/Tokyo", next_fire_at=due)
    schedule_store.ensure_schedule(huey.jobs.db, item, now=now)
    huey.jobs.db.close()
    tokyo = dt.datetime.fromtimestamp(due, dt.timezone(dt.timedelta(hours=9)))

    async def scenario(app, pilot):
        await pilot.press("4")
        await settle(app, pilot)
        cell = app.screen.query_one("#schedules", KeyedTable).get_row("quarter_hourly")[4]
        assert cell.startswith("in 2m") and cell.endswith("Asia/Tokyo")
        assert tokyo.strftime("%H:%M") in cell

    drive(make_app(db=huey.jobs.path, refresh=60, clock=lambda: now), scenario)


def test_a_second_skip_next_says_one_is_pending_and_the_slot_it_skips_is_marked(huey,
                                                                                tmp_path):
    now = time.time()
    schedule_store.ensure_schedule(huey.jobs.db, sync_item(registry.get("quarter_hourly"), now),
                                   now=now)
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await pilot.press("4")
        await settle(app, pilot)
        table = app.screen.query_one("#schedules", KeyedTable)
        assert "skipped" not in str(table.get_row("quarter_hourly")[4])
        for _ in range(2):
            await pilot.press("n")
            await settle(app, pilot)
        said = [n.message for n in app._notifications]
        assert said == ["skipping the next run of quarter_hourly",
                        "skipping the next run of quarter_hourly: already asked (one at a time)"]
        assert str(table.get_row("quarter_hourly")[4]).endswith("(skipped)")

    drive(make_app(db=huey.jobs.path, refresh=60), scenario, notifications=True)
