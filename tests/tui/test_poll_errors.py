"""A failed poll: a database problem is told from a bug, and the last data stays, dimmed."""

from __future__ import annotations

from textual.widgets import Static

from tests.tui.conftest import drive, settle, wait_poll
from tui.app import make_app
from tui.widgets.keyed_table import KeyedTable


async def refresh(app, pilot) -> str:
    before = app.polls
    await pilot.press("ctrl+r")
    await wait_poll(app, pilot, since=before)
    return str(app.screen.query_one("#status", Static).render())


def test_a_bug_is_not_called_a_database_problem_and_its_traceback_is_kept(
        seeded, tmp_path, monkeypatch):
    log = tmp_path / "errors.log"
    broken = {"on": False}

    import tui.app as dashboard

    real = dashboard.health_verdict

    def verdict(*args, **kwargs):
        if broken["on"]:
            return None < 1.0  # the kind of slip that blanked the dashboard
        return real(*args, **kwargs)

    monkeypatch.setattr(dashboard, "health_verdict", verdict)

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        assert table.row_count == 11
        broken["on"] = True
        status = await refresh(app, pilot)
        assert status.startswith("dashboard error (a bug, not the database)")
        assert "TypeError" in status and str(log) in status and "showing data from" in status
        assert "database unavailable" not in status
        assert "Traceback (most recent call last)" in log.read_text()
        assert "'<' not supported" in log.read_text()
        assert table.row_count == 11 and app.screen.has_class("-stale")
        await refresh(app, pilot)
        assert log.read_text().count("Traceback") == 1  # the same error is logged once
        broken["on"] = False
        status = await refresh(app, pilot)
        assert status.startswith("updated ") and not app.screen.has_class("-stale")

    drive(make_app(db=seeded.path, refresh=60.0, error_log=log), scenario)


def test_a_missing_database_keeps_the_last_data_dimmed(dashboard, seeded, tmp_path):
    aside = seeded.path.with_suffix(".aside")

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        seeded.path.rename(aside)
        status = await refresh(app, pilot)
        assert status.startswith("database unavailable") and "showing data from" in status
        assert app.screen.query_one("#jobs", KeyedTable).row_count == 11
        assert app.screen.has_class("-stale")
        assert "2 Jobs (6 live)" in app.screen.query_one("#nav").text
        aside.rename(seeded.path)
        assert (await refresh(app, pilot)).startswith("updated ")

    drive(dashboard(), scenario)


def test_an_error_while_showing_a_poll_is_told_and_refreshing_goes_on(
        seeded, tmp_path, monkeypatch):
    # The data was read, but showing it failed on the UI thread: the refresh timer
    # was never set again and the screen stayed as it was, with no word of why.
    log = tmp_path / "errors.log"
    broken = {"on": False}

    from tui.screens.jobs import JobsScreen

    real = JobsScreen.apply

    def apply(self, data):
        if broken["on"]:
            raise TypeError("cannot show this page")
        real(self, data)

    monkeypatch.setattr(JobsScreen, "apply", apply)

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        status = app.screen.query_one("#status", Static)
        broken["on"] = True
        await wait_poll(app, pilot)  # a timed poll: nothing pressed
        text = str(status.render())
        assert text.startswith("dashboard error (a bug, not the database)"), text
        assert "cannot show this page" in text and str(log) in text
        assert "Traceback (most recent call last)" in log.read_text()
        assert app.screen.query_one("#jobs", KeyedTable).row_count == 11
        broken["on"] = False
        await wait_poll(app, pilot)  # the timer still runs
        await wait_poll(app, pilot)
        assert str(status.render()).startswith("updated ")
        assert not app.screen.has_class("-stale")

    drive(make_app(db=seeded.path, refresh=0.2, error_log=log), scenario)


def test_a_database_path_with_brackets_is_named_as_it_is(seeded, tmp_path):
    folder = tmp_path / "backup [old] [b]"
    folder.mkdir()
    path = folder / "jobs.db"
    seeded.path.rename(path)

    async def scenario(app, pilot):
        assert str(path) in await refresh(app, pilot)
        path.rename(path.with_suffix(".aside"))
        status = await refresh(app, pilot)
        assert status.startswith("database unavailable") and f"{path}: no such" in status

    drive(make_app(db=path, refresh=60.0), scenario)
