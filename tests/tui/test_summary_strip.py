"""The summary strip: never blank, and every number says what it counts."""

from __future__ import annotations

from textual.widgets import Static

from tests import jobs
from tests.tui import dashboard_jobs
from tests.tui.conftest import drive
from tui.app import make_app


def test_a_first_queue_with_nothing_due_does_not_blank_the_dashboard(huey):
    # 'default' sorts before 'mail' and holds only a job due in an hour.
    jobs.noop.schedule(args=(1,), delay=3600)
    dashboard_jobs.send_mail("due@example.com")
    huey.jobs.db.close()

    async def scenario(app, pilot):
        status = app.screen.query_one("#status", Static)
        assert not status.has_class("-problem"), str(status.render())
        strip = str(app.screen.query_one("#summary", Static).render())
        assert "waiting: 1" in strip and "scheduled: 1" in strip

    drive(make_app(db=huey.jobs.path, refresh=60.0), scenario)
