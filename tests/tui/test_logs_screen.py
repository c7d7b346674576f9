"""Logs screen and the job's own lines in its detail, from runner_log."""

from __future__ import annotations

import time

from textual.widgets import Log, Static

from runner.store.sqlite import SqliteStore
from runner.store.sqlite import logs as logstore
from tests.tui.conftest import drive, settle, wait_poll
from tui.app import make_app
from tui.widgets.keyed_table import KeyedTable


def add_logs(huey, rows):
    huey.jobs.db.write(lambda conn: logstore.insert_logs(conn, rows))


def test_logs_tail_filter_and_follow(huey, seeded):
    now = time.time()
    job = seeded.completed[0]
    add_logs(huey, [
        (now, 20, "app.tasks", "sending invoice 1", job, "tests.jobs.add", None),
        (now, 30, "app.tasks", "slow smtp server", job, "tests.jobs.add", None),
        (now, 20, "runner.worker", "worker started", None, None, "w-1"),
    ])

    async def scenario(app, pilot):
        await pilot.press("6")
        await settle(app, pilot)
        log = app.screen.query_one(Log)
        assert log.line_count == 3 and "sending invoice 1" in log.lines[0]
        await pilot.press("l", "l")  # all -> INFO -> WARNING
        await settle(app, pilot)
        assert log.line_count == 1 and "slow smtp server" in log.lines[0]
        await pilot.press("l", "l")  # ERROR -> all
        await settle(app, pilot)
        app.screen.action_filter()
        app.screen.query_one("#log-filter").value = "invoice"
        await pilot.press("enter")
        await settle(app, pilot)
        assert log.line_count == 1
        await pilot.press("escape")
        await settle(app, pilot)
        assert log.line_count == 3
        add_logs(huey, [(now, 40, "app.tasks", "new line arrives", None, None, "w-1")])
        before = app.polls
        await pilot.press("ctrl+r")
        await wait_poll(app, pilot, since=before)
        assert log.line_count == 4 and "new line arrives" in log.lines[-1]
        await pilot.press("f")  # hold: new lines wait
        add_logs(huey, [(now, 40, "app.tasks", "held back", None, None, "w-1")])
        before = app.polls
        await pilot.press("ctrl+r")
        await wait_poll(app, pilot, since=before)
        assert log.line_count == 4

    drive(make_app(db=seeded.path, refresh=60), scenario)


def test_job_detail_shows_the_jobs_own_lines(huey, seeded):
    job = seeded.completed[0]
    add_logs(huey, [(time.time(), 20, "app.tasks", "only this job's line", job, "add", None),
                    (time.time(), 20, "app.tasks", "another job", seeded.completed[1], "add",
                     None)])

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        table.move_cursor(row=table.get_row_index(job))
        await pilot.press("enter")
        await settle(app, pilot)
        text = str(app.screen.query_one("#detail", Static).render())
        assert "Log (1 lines)" in text and "only this job's line" in text
        assert "another job" not in text

    drive(make_app(db=seeded.path, refresh=60), scenario)


def segment_styles(log: Log, y: int) -> dict[str, object]:
    return {seg.text.strip(): seg.style for seg in log.render_line(y) if seg.text.strip()}


def test_levels_are_coloured(huey, seeded):
    now = time.time()
    add_logs(huey, [(now, 20, "app", "fine", None, None, "w-1"),
                    (now, 30, "app", "careful", None, None, "w-1"),
                    (now, 40, "app", "broken", None, None, "w-1")])

    async def scenario(app, pilot):
        await pilot.press("6")
        await settle(app, pilot)
        log = app.screen.query_one(Log)
        info, warning, error = (segment_styles(log, y) for y in range(3))
        assert info["INFO"].color.name == "green"
        assert warning["WARNING"].color.name == "yellow"
        assert error["ERROR"].color.name == "red"
        assert any(text.endswith("broken") and style.color.name == "red"
                   for text, style in error.items())

    drive(make_app(db=seeded.path, refresh=60), scenario)


def test_job_filter_shows_one_jobs_lines(huey, seeded):
    now = time.time()
    mine, other = seeded.completed[:2]
    add_logs(huey, [(now, 20, "app", "line of mine", mine, "add", None),
                    (now, 20, "app", "line of other", other, "add", None),
                    (now, 20, "app", "second of mine", mine, "add", None)])

    async def scenario(app, pilot):
        await pilot.press("6")
        await settle(app, pilot)
        log = app.screen.query_one(Log)
        assert log.line_count == 3
        app.screen.action_filter()
        app.screen.query_one("#log-filter").value = f"job:{mine[-12:]}"  # the short id
        await pilot.press("enter")
        await settle(app, pilot)
        assert [line.split(": ")[-1] for line in log.lines] == ["line of mine", "second of mine"]
        app.screen.action_filter()
        app.screen.query_one("#log-filter").value = f"job:{mine} second"
        await pilot.press("enter")
        await settle(app, pilot)
        assert [line.split(": ")[-1] for line in log.lines] == ["second of mine"]
        await pilot.press("escape")
        await settle(app, pilot)
        assert log.line_count == 3

    drive(make_app(db=seeded.path, refresh=60), scenario)


def test_a_job_filter_looks_its_job_up_once_not_at_every_refresh(huey, seeded, monkeypatch):
    # A short id is found by a scan of every job id (on Redis, of the whole history):
    # once per filter, not once a second.
    now = time.time()
    mine = seeded.completed[0]
    add_logs(huey, [(now, 20, "app", "line of mine", mine, "add", None)])
    looked_up: list[str] = []
    get_job = SqliteStore.get_job

    def counted(self, job_id):  # noqa: ANN001, ANN202 - the store's own signature
        looked_up.append(job_id)
        return get_job(self, job_id)
    monkeypatch.setattr(SqliteStore, "get_job", counted)

    async def scenario(app, pilot):
        await pilot.press("6")
        await settle(app, pilot)
        app.screen.action_filter()
        app.screen.query_one("#log-filter").value = f"job:{mine[-12:]}"
        await pilot.press("enter")
        await settle(app, pilot)
        for _ in range(3):
            add_logs(huey, [(time.time(), 20, "app", "more of mine", mine, "add", None)])
            before = app.polls
            await pilot.press("ctrl+r")
            await wait_poll(app, pilot, since=before)
        log = app.screen.query_one(Log)
        assert [line.split(": ")[-1] for line in log.lines] == ["line of mine"] + [
            "more of mine"] * 3
        assert looked_up == [mine[-12:]]

    drive(make_app(db=seeded.path, refresh=60), scenario)


def test_vi_keys_scroll_and_k_holds_the_view(huey, seeded):
    now = time.time()
    add_logs(huey, [(now, 20, "app", f"line {i}", None, None, "w-1") for i in range(200)])

    async def scenario(app, pilot):
        await pilot.press("6")
        await settle(app, pilot)
        log = app.screen.query_one(Log)
        await pilot.pause()
        bottom = log.max_scroll_y
        assert bottom > 0 and log.scroll_y == bottom
        await pilot.press("k", "k")
        await pilot.pause()
        assert log.scroll_y == bottom - 2 and not app.screen.follow
        await pilot.press("j")
        await pilot.pause()
        assert log.scroll_y == bottom - 1
        await pilot.press("g")
        await pilot.pause()
        assert log.scroll_y == 0
        await pilot.press("G")
        await settle(app, pilot)
        assert log.scroll_y == log.max_scroll_y and app.screen.follow

    drive(make_app(db=seeded.path, refresh=60), scenario)
