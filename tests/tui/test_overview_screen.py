"""Overview: chart time labels and range, run-time percentiles, per-queue rate, drill-down."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import time

import pytest
from rich.text import Text
from textual.widgets import Static

from runner.store.factory import store_for
from runner.store.sqlite import workers
from runner.store.sqlite.db import Database
from tests.conformance.helpers import OWNER, failure, job
from tests.tui.conftest import drive, settle
from tui.app import make_app
from tui.widgets.keyed_table import KeyedTable


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def hhmm(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M")


def test_charts_label_their_time_and_switch_range(dashboard, seeded):
    now = time.time()

    async def scenario(app, pilot):
        axis = text(app, "#completed-axis")
        hour_start = (int(now) // 60 + 1) * 60 - 3600
        assert axis.startswith(hhmm(hour_start)) and axis.endswith("now")
        assert hhmm(hour_start + 1800) in axis
        assert text(app, "#completed-label").startswith("completed / min · 1h: 3 (peak")
        await pilot.press("t")
        await settle(app, pilot)
        assert text(app, "#completed-label").startswith("completed / 5 min · 6h: 3 (peak")
        six_start = (int(now) // 300 + 1) * 300 - 6 * 3600
        assert text(app, "#completed-axis").startswith(hhmm(six_start))
        assert app.rates.minutes == 360  # history is now read back six hours
        await pilot.press("t")
        await settle(app, pilot)
        assert "/ 15 min · 24h" in text(app, "#failed-label")
        await pilot.press("t")
        await settle(app, pilot)
        assert "/ min · 1h" in text(app, "#failed-label")

    drive(dashboard(clock=lambda: now), scenario)  # a fixed clock: no minute turns mid-test


def test_run_time_percentiles_and_rate_per_queue(dashboard, seeded):
    now = time.time()
    with sqlite3.connect(seeded.path) as conn:
        for job_id, took in zip(seeded.completed, (1.0, 2.0, 10.0), strict=True):
            conn.execute("UPDATE runner_job SET started_at = ?, finished_at = ? WHERE id = ?",
                         (now - 5 - took, now - 5, job_id))
    conn.close()

    async def scenario(app, pilot):
        title = text(app, "#queues-title")
        assert "p50 2.0s" in title and "p95 10.0s" in title and "done/min" not in title
        queues = app.screen.query_one("#queues", KeyedTable)
        assert queues.get_row("default")[6:] == ["3", "2.0s", "10.0s"]
        assert queues.get_row("mail")[6:] == ["0", "-", "-"]

    drive(dashboard(clock=lambda: now), scenario)


def test_enter_on_a_queue_or_a_worker_opens_its_jobs(dashboard, seeded):
    owner = "host-a:4242:1"
    db = Database(seeded.path)
    workers.register(db, owner, concurrency=2, queues=("default",))
    running = seeded.waiting[0]
    db.write(lambda c: c.execute(
        "UPDATE runner_job SET state = 'executing', lease_owner = ?, started_at = ? "
        "WHERE id = ?", (owner, time.time(), running)))
    db.close()

    async def scenario(app, pilot):
        queues = app.screen.query_one("#queues", KeyedTable)
        queues.focus()
        queues.move_cursor(row=queues.get_row_index("mail"))
        await pilot.press("enter")
        await settle(app, pilot)
        await settle(app, pilot)
        assert app.current_mode == "jobs"
        listed = app.screen.query_one("#jobs", KeyedTable)
        assert {k.value for k in listed.rows} == set(seeded.mail)
        await pilot.press("1")
        await settle(app, pilot)
        table = app.screen.query_one("#workers", KeyedTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(owner))
        await pilot.press("enter")
        await settle(app, pilot)
        await settle(app, pilot)
        assert app.current_mode == "jobs"
        listed = app.screen.query_one("#jobs", KeyedTable)
        assert [k.value for k in listed.rows] == [running]
        assert f"worker:{owner}" in text(app, "#filter-line")

    drive(dashboard(), scenario)


def test_a_queue_name_with_brackets_reads_as_it_is(huey):
    # The runner refuses such a name now, but a database can hold one from before
    huey.jobs.store.enqueue([job(time.time(), queue="reports[eu] [/]")], now=time.time())
    huey.jobs.db.close()

    async def scenario(app, pilot):
        name = "reports[eu] [/]"
        row = app.screen.query_one("#queues", KeyedTable).get_row(name)
        assert Text.from_markup(row[0]).plain == name and row[1] == "1"  # as the table reads it
        await pilot.press("7")
        await settle(app, pilot)
        assert Text.from_markup(app.screen.query_one(KeyedTable).get_row(name)[0]).plain == name

    drive(make_app(db=huey.jobs.path, refresh=60), scenario)


def test_a_worker_whose_clock_is_off_shows_its_drift_and_the_banner_names_it(dashboard, seeded):
    now = time.time()
    db = Database(seeded.path)
    # Offsets as workers on PostgreSQL or Redis record them (a SQLite worker has none)
    workers.register(db, "host-a:1:1", concurrency=2, queues=(), clock_offset=0.02, now=now)
    workers.register(db, "host-b:2:1", concurrency=2, queues=(), clock_offset=-120.0,
                     now=now - 121)  # it beat 1 s ago, by a clock two minutes behind
    db.close()

    async def scenario(app, pilot):
        table = app.screen.query_one("#workers", KeyedTable)
        a, b = table.get_row("host-a:1:1"), table.get_row("host-b:2:1")
        assert (a[1], a[3]) == ("running", "+20ms")
        assert (b[1], b[3]) == ("running", "[red]-2m00s[/]")
        assert "stale" not in b[2]
        assert text(app, "#health") == ("UNHEALTHY: clock drift: host-b's clock is 2m00s "
                                        "behind the server's (limit 15.0s)")

    drive(dashboard(clock=lambda: now), scenario)


def test_a_worker_not_measured_yet_shows_dashes_for_memory_and_cpu(dashboard, seeded):
    now = time.time()
    db = Database(seeded.path)
    workers.register(db, "host-a:1:1", concurrency=2, queues=(), now=now)  # no beat yet
    workers.register(db, "host-b:2:1", concurrency=2, queues=(), now=now)
    workers.heartbeat(db, "host-b:2:1", [], lease_seconds=30, rss_bytes=50 * 2**20,
                      cpu_percent=0.0, now=now)
    db.close()

    async def scenario(app, pilot):
        table = app.screen.query_one("#workers", KeyedTable)
        assert table.get_row("host-a:1:1")[4:6] == ["-", "-"]
        assert table.get_row("host-b:2:1")[4:6] == ["50.0 MB", "0%"]

    drive(dashboard(clock=lambda: now), scenario)


def test_a_killed_worker_of_this_node_reads_as_gone_under_its_node_name(dashboard, seeded,
                                                                       monkeypatch):
    # Given a worker of this host named by RUNNER_NODE_NAME, killed (its row says running)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    now = time.time()
    db = Database(seeded.path)
    workers.register(db, f"node-7:{gone.pid}:1", concurrency=2, queues=(), now=now)
    db.close()
    # When the dashboard runs with the service's environment
    monkeypatch.setenv("RUNNER_NODE_NAME", "node-7")

    async def scenario(app, pilot):
        # Then the worker is known dead, as `python -m runner workers` finds it
        row = app.screen.query_one("#workers", KeyedTable).get_row(f"node-7:{gone.pid}:1")
        assert row[1] == "[red]dead[/]", row

    drive(dashboard(clock=lambda: now), scenario)


def test_waiting_on_the_overview_is_ready_now_as_on_the_summary_strip(dashboard, seeded):
    # Given, beside the seeded jobs ready now, a queue with one job ready now,
    # two due later and one failed job waiting out its backoff
    now = time.time()
    db = Database(seeded.path)
    store = store_for(db)
    flaky = job(now - 1, queue="reports", max_attempts=3)
    store.enqueue([flaky], now=now)
    [claimed] = store.claim(now=now, owner=OWNER, lease_seconds=30, want=1,
                            queues=("reports",)).claimed
    store.retry(flaky.id, claimed.attempt, failure(), worker=OWNER, now=now,
                run_at=now + 600, reason="retrying")
    store.enqueue([job(now - 1, queue="reports"), job(now + 3600, queue="reports"),
                   job(now + 7200, queue="reports")], now=now)
    db.close()

    async def scenario(app, pilot):
        # Then "waiting" counts the jobs ready now in the table as on the strip
        strip = text(app, "#summary")
        assert "waiting: 7 " in strip and "scheduled: 2 " in strip and "retrying: 1 " in strip
        queues = app.screen.query_one("#queues", KeyedTable)
        header = [str(c.label) for c in queues.columns.values()]
        assert header[:5] == ["queue", "waiting", "scheduled", "retrying", "running"]
        assert queues.get_row("reports")[1:5] == ["1", "2", "1", "0"]
        assert queues.get_row("default")[1:5] == ["4", "0", "0", "0"]
        waiting = sum(int(queues.get_row(k.value)[1]) for k in queues.rows)
        assert waiting == 7

    drive(dashboard(), scenario)


def test_a_stalled_worker_reads_stalled_and_the_banner_names_its_job(dashboard, seeded):
    now = time.time()
    db = Database(seeded.path)
    workers.register(db, "host-a:1:1", concurrency=2, queues=(), now=now)
    workers.heartbeat(db, "host-a:1:1", [], lease_seconds=30, now=now - 2,
                      status="stalled: job abc (stuck) 6s past its 3s timeout")
    db.close()

    async def scenario(app, pilot):
        assert app.screen.query_one("#workers", KeyedTable).get_row("host-a:1:1")[1] \
            == "[red]stalled[/]"
        assert text(app, "#health") == ("UNHEALTHY: worker stalled: job abc (stuck) 8s past "
                                        "its 3s timeout (worker host-a:1:1)")

    drive(dashboard(clock=lambda: now), scenario)


@pytest.mark.parametrize("read_only", [False, True])
def test_jobs_no_worker_has_claimed_show_on_the_dashboard(huey, read_only):
    # Single enqueues wait in the intake until a transaction moves them; with no worker
    # running, the dashboard (read-only too: no job changes state) has them moved.
    from tests import jobs

    waiting = [jobs.noop(i).id for i in range(3)]
    path = huey.jobs.path
    huey.jobs.db.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM runner_intake").fetchone() == (3,)

    async def scenario(app, pilot):
        assert "waiting: 3" in text(app, "#summary")
        queues = app.screen.query_one("#queues", KeyedTable)
        assert queues.get_row("default")[:2] == ["default", "3"]
        await pilot.press("2")
        await settle(app, pilot)
        listed = app.screen.query_one("#jobs", KeyedTable)
        assert {k.value for k in listed.rows} == set(waiting)

    drive(make_app(db=path, refresh=60.0, read_only=read_only), scenario)
