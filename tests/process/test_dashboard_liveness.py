"""The dashboard beside real workers: SIGKILL shows as dead, prefetched apart from running."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest
from textual.widgets import Static

from runner.cli import main as cli
from runner.readmodel.health import check
from runner.settings_loader import load_settings
from runner.store.factory import open_store
from runner.store.sqlite.db import Database
from runner.store.sqlite.queries import list_workers
from tests import jobs
from tests.conftest import run_short_jobs_first, wait_for, write_settings
from tests.tui.conftest import drive, settle, wait_poll
from tui.app import make_app
from tui.widgets.keyed_table import KeyedTable


@pytest.fixture
def settings_file(tmp_path):
    # A heartbeat is stale after 1 s here (the default is 3 intervals, at least 10 s).
    return write_settings(tmp_path, extra="\n[health]\nheartbeat_max_age = 1\n")


def registered(db: Database, count: int) -> list[str]:
    rows = db.query("SELECT id FROM runner_worker WHERE state = 'running'")
    return [r[0] for r in rows] if len(rows) >= count else []


def test_a_worker_killed_while_idle_is_marked_dead_and_leaves_the_live_list(
        huey, make_worker, settings_file, capsys):
    db = huey.jobs.db
    first = make_worker()
    wait_for(lambda: registered(db, 1), timeout=30, message="first worker registered")
    (killed_id,) = registered(db, 1)
    make_worker()
    wait_for(lambda: registered(db, 2), timeout=30, message="second worker registered")
    first.kill()  # idle: it holds no job, so no orphan points at it
    wait_for(lambda: db.query("SELECT state FROM runner_worker WHERE id = ?",
                              (killed_id,))[0][0] == "dead",
             timeout=30, message="the idle worker marked dead by the live one")
    assert killed_id not in [w.id for w in list_workers(db)]
    capsys.readouterr()
    assert cli(["--settings", str(settings_file), "workers"]) == 0
    assert killed_id not in capsys.readouterr().out

    async def scenario(app, pilot):
        workers = app.screen.query_one("#workers", KeyedTable)
        assert workers.row_count == 1 and killed_id not in {k.value for k in workers.rows}

    drive(make_app(settings=settings_file, refresh=60.0), scenario)


def test_kill_of_the_only_worker_shows_no_live_worker_and_no_running_jobs(
        huey, make_worker, settings_file, capsys):
    db = huey.jobs.db
    worker = make_worker()
    wait_for(lambda: registered(db, 1), timeout=30, message="worker registered")
    (killed_id,) = registered(db, 1)
    for i in range(2):
        jobs.sleep_then_record(60, f"long {i}")
    huey.jobs.store.close()  # the CLI below configures the runner anew
    wait_for(lambda: db.query("SELECT count(*) FROM runner_job WHERE state='executing'")[0][0]
             == 2, timeout=30, message="both jobs executing")
    worker.kill()
    capsys.readouterr()
    assert cli(["--settings", str(settings_file), "workers"]) == 0
    assert "dead (process gone)" in capsys.readouterr().out

    async def scenario(app, pilot):
        deadline = time.monotonic() + 20
        banner = app.screen.query_one("#health", Static)
        while not banner.display:
            assert time.monotonic() < deadline, "no health banner"
            await asyncio.sleep(0.2)
            before = app.polls
            await pilot.press("ctrl+r")
            await wait_poll(app, pilot, since=before)
        text = str(banner.render())
        report = check(open_store(huey.jobs.path, readonly=True), load_settings(settings_file))
        assert not report.ok
        # Its process is gone on this host: known dead at once, as `workers` says
        assert text.startswith("UNHEALTHY: no live worker"), text
        assert report.reason.split(":")[0] in text
        strip = str(app.screen.query_one("#summary", Static).render())
        assert "running: 0" in strip and "stalled (worker gone): 2" in strip
        workers = app.screen.query_one("#workers", KeyedTable)
        assert "dead" in str(workers.get_row(killed_id)[1])
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        states = [str(table.get_row_at(i)[3]) for i in range(table.row_count)]
        assert states == ["[red]stalled[/]"] * 2
        # Its detail says so too, and a cancel says who will settle it
        await pilot.press("enter")
        await settle(app, pilot)
        detail = str(app.screen.query_one("#detail", Static).render())
        assert "stalled (executing; its worker is gone)" in detail, detail
        assert "which is gone" in detail and "running for" not in detail, detail
        await pilot.press("c")
        await settle(app, pilot)
        said = [n.message for n in app._notifications]
        assert any("its worker is gone: it ends cancelled once a worker requeues it" in m
                   for m in said), said
        await pilot.press("escape")
        await settle(app, pilot)
        # The queue tables say what the strip says: none running, two stalled
        for key, column in (("7", "n_running"), ("1", "running")):
            await pilot.press(key)
            await settle(app, pilot)
            table = app.screen.query_one("#queues", KeyedTable)
            row = dict(zip(table.shown_columns, table.get_row("default"), strict=True))
            assert row[column] == "0 [red]+2 stalled[/]", (key, row)

    drive(make_app(settings=settings_file, refresh=60.0), scenario)
    capsys.readouterr()
    assert cli(["--settings", str(settings_file), "queues", "--json"]) == 0
    (default,) = [q for q in json.loads(capsys.readouterr().out)["queues"]
                  if q["name"] == "default"]
    assert (default["running"], default["stalled"]) == (0, 2)


def test_workers_show_running_apart_from_prefetched_and_count_processed(
        huey, make_worker, tmp_path):
    settings = write_settings(tmp_path, name="one-thread.toml",
                              worker={"max_concurrent_tasks": 1, "prefetch": 2})
    db = huey.jobs.db
    worker = make_worker(settings=settings)
    run_short_jobs_first(100)  # it claims ahead only once its jobs read as short
    wait_for(lambda: db.query("SELECT processed FROM runner_worker")
             and db.query("SELECT processed FROM runner_worker")[0][0] == 100,
             timeout=30, message="the heartbeat reports 100 processed jobs")
    # Due at one instant: the one thread claims all three, runs one, holds two.
    due = dt.datetime.now() + dt.timedelta(seconds=1)
    for i in range(3):
        jobs.sleep_then_record.schedule((60, f"long {i}"), eta=due)
    wait_for(lambda: db.query("SELECT running FROM runner_worker")[0][0] == 1
             and db.query("SELECT count(*) FROM runner_job WHERE state='executing'")[0][0] == 3,
             timeout=30, message="one job running, two prefetched")
    huey.jobs.store.close()

    async def scenario(app, pilot):
        table = app.screen.query_one("#workers", KeyedTable)
        (key,) = [k.value for k in table.rows]
        row = dict(zip(table.shown_columns, table.get_row(key), strict=True))
        assert (row["running"], row["prefetched"], row["processed"]) == ("1/1", "2", "100")
        strip = str(app.screen.query_one("#summary", Static).render())
        assert "running: 3" in strip  # claimed by a live worker: none is stalled
        before = app.polls
        await pilot.press("ctrl+r")
        await wait_poll(app, pilot, since=before)

    drive(make_app(db=huey.jobs.path, refresh=60), scenario)
    worker.kill()
    Database(huey.jobs.path, readonly=True).close()
