"""80x24: nothing cut from the navigation or the summary; tables drop columns, never scroll."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from tests.tui.conftest import drive, settle
from tui.widgets.keyed_table import KeyedTable
from tui.widgets.nav_bar import NavBar, NavTab
from tui.widgets.summary_bar import HealthBanner, StatusLine


def fits_without_scrolling(table: KeyedTable) -> bool:
    return table.virtual_size.width <= table.scrollable_content_region.width


def test_at_80_columns_every_tab_the_whole_summary_and_the_job_error_show(dashboard, seeded):
    async def scenario(app, pilot):
        nav = app.screen.query_one(NavBar)
        assert sum(tab.outer_size.width for tab in nav.query(NavTab)) <= 80
        for label in ("1 Over", "2 Jobs 6", "3 Fail 2", "4 Sched", "5 Evts", "6 Logs"):
            assert label in nav.text
        summary = app.screen.query_one("#summary", Static)
        strip = Text.from_markup(str(summary.render())).plain
        assert len(strip) <= summary.content_size.width
        assert "err: " in strip and "old: " in strip and "dead: 2" in strip
        for key, table_id in (("1", "#workers"), ("3", "#failures"), ("4", "#schedules"),
                              ("5", "#events"), ("2", "#jobs")):
            await pilot.press(key)
            await settle(app, pilot)
            assert fits_without_scrolling(app.screen.query_one(table_id, KeyedTable)), table_id
        table = app.screen.query_one("#jobs", KeyedTable)
        assert table.shown_columns == ["id", "task", "state", "attempt", "error"]
        row = dict(zip(table.shown_columns, table.get_row(seeded.fatal), strict=True))
        assert "cannot ever work" in row["error"]

    drive(dashboard(), scenario, size=(80, 24))


def test_widening_the_terminal_brings_every_column_back(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        assert len(table.shown_columns) == 5
        await pilot.resize_terminal(160, 40)
        await settle(app, pilot)
        assert len(table.shown_columns) == 10 and table.row_count == 11
        assert "1 Overview" in app.screen.query_one(NavBar).text

    drive(dashboard(), scenario, size=(80, 24))


def status_line(app) -> str:
    status = app.screen.query_one("#status", StatusLine)
    return Text.from_markup(str(status.render())).plain


def footer_keys(app) -> dict[str, str]:
    """Key -> label of every footer key drawn whole inside the terminal."""
    width = app.size.width
    return {key.key_display: key.description for key in app.screen.query(FooterKey)
            if key.region.width and key.region.right <= width}


def test_the_status_line_keeps_the_database_and_refresh_state_at_80_100_and_120(dashboard, seeded):
    async def scenario(app, pilot):
        for width in (80, 100, 120):
            await pilot.resize_terminal(width, 24)
            await pilot.press("ctrl+r")
            await settle(app, pilot)
            line = status_line(app)
            assert len(line) <= app.screen.query_one("#status").content_size.width, width
            assert "every 60s" in line and "read-only" in line, line
            assert "jobs.db" in line, line
            if width >= 100:
                assert f"{seeded.path.parent.name}/jobs.db" in line, line
            # the health verdict (no worker runs on the seed) is shown whole, wrapped if long
            banner = app.screen.query_one("#health", HealthBanner)
            said = Text.from_markup(str(banner.render())).plain
            assert said.startswith("UNHEALTHY: no running worker"), said
            assert len(said) <= banner.content_size.width * banner.content_size.height
        await pilot.resize_terminal(80, 24)
        await pilot.press("z")
        await settle(app, pilot)
        assert "FROZEN (z resumes)" in status_line(app) and "jobs.db" in status_line(app)

    drive(dashboard(read_only=True), scenario, size=(80, 24))


def test_the_footer_keeps_quit_help_freeze_and_each_screens_main_keys_at_80_100_and_120(
        dashboard, seeded):
    main_keys = {"1": {"t"}, "2": {"r", "d", "c", "/", "s"}, "3": {"r", "d"},
                 "4": {"p", "t"}, "5": {"u", "r"}, "6": {"f", "l", "/"}}

    async def scenario(app, pilot):
        for width in (80, 100, 120):
            await pilot.resize_terminal(width, 24)
            for screen, keys in main_keys.items():
                await pilot.press(screen)
                await settle(app, pilot)
                shown = footer_keys(app)
                assert {"q", "?", "z"} | keys <= set(shown), (width, screen, shown)
                assert len(shown) == len(app.screen.query(FooterKey)), (width, screen)
        assert footer_keys(app)["/"] == "Filter"
        await pilot.press("2")
        await settle(app, pilot)
        assert {"[", "]", "o"} <= set(footer_keys(app))  # 120 columns: paging and sort too

    drive(dashboard(), scenario, size=(80, 24))
