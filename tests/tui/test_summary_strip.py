"""The summary strip: never blank, and every number says what it counts."""

from __future__ import annotations

from textual.widgets import Static

from runner.store.views import Summary
from tests import jobs
from tests.tui import dashboard_jobs
from tests.tui.conftest import drive
from tui.app import make_app
from tui.widgets.summary_bar import summary_text


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


def test_a_dead_count_that_stopped_at_its_limit_shows_as_more():
    # Dead jobs grow with history; the strip counts them up to a limit and says so.
    common = dict(at=0.0, waiting=0, running=0, scheduled=0, retrying=0,
                  completed_per_minute=0.0, error_rate=None, oldest_waiting_age=None)
    assert "dead: [b][red]10,000+[/]" in summary_text(Summary(dead=10_000, dead_capped=True,
                                                              **common))
    assert "dead: [b][red]12[/]" in summary_text(Summary(dead=12, **common))


def test_the_strip_fits_80_cells_with_stalled_jobs_keeping_errors_and_the_oldest_wait():
    from rich.text import Text

    busy = Summary(at=0.0, waiting=12_345, running=0, scheduled=20_000, retrying=10_000,
                   dead=10_000, dead_capped=True, completed_per_minute=1_234.0, error_rate=0.125,
                   oldest_waiting_age=3_725.0, stalled=6)
    text = summary_text(busy, 78)  # 80 cells less the border
    assert Text.from_markup(text).cell_len <= 78, text
    for part in ("stall", "err", "old", "dead"):
        assert part in text, text
