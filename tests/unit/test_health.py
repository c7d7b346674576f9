"""health: 0 with a live worker; 1 with a stale heartbeat, a stuck queue, a lagging scheduler."""

from __future__ import annotations

import sqlite3
import time

import pytest

from runner.cli import main as cli
from runner.readmodel.health import (
    HealthFacts,
    HealthReport,
    clock_offsets,
    clock_problem,
    evaluate,
    schedule_lag_problem,
)
from runner.store.rows import WorkerRow
from tests import jobs
from tests.conftest import write_settings
from tests.unit.test_metrics import add_schedule_row

LIMITS = {"heartbeat_max_age": 10.0, "max_waiting_age": 600.0, "max_schedule_lag": 300.0}


def health(huey, capsys):
    capsys.readouterr()
    code = cli(["--settings", str(huey.settings.path), "health"])
    return code, capsys.readouterr().out.strip()


def fresh_worker(db):
    now = time.time()
    db.write(lambda c: c.execute(
        "INSERT INTO runner_worker (id, host, pid, started_at, heartbeat_at) "
        "VALUES ('h:1:1', 'h', 1, ?, ?)", (now, now)))


def test_stuck_queue_is_unhealthy(huey, capsys):
    fresh_worker(huey.jobs.db)
    result = jobs.add(1, 1)
    huey.jobs.db.write(lambda c: c.execute(
        "UPDATE runner_job SET run_at = run_at - 3600 WHERE id = ?", (result.id,)))
    code, out = health(huey, capsys)
    assert code == 1 and "queue 'default' stuck" in out


def test_a_paused_queue_is_not_stuck(huey, capsys):
    from runner import pause_queue

    fresh_worker(huey.jobs.db)
    result = jobs.add(1, 1)
    huey.jobs.db.write(lambda c: c.execute(
        "UPDATE runner_job SET run_at = run_at - 3600 WHERE id = ?", (result.id,)))
    pause_queue("default")
    code, out = health(huey, capsys)
    assert (code, out) == (0, "ok")


def test_lagging_scheduler_is_unhealthy(huey, capsys):
    fresh_worker(huey.jobs.db)
    add_schedule_row(huey.jobs.db, "nightly", time.time() - 1800)
    code, out = health(huey, capsys)
    assert code == 1 and "scheduler lagging: schedule 'nightly'" in out


def test_a_stalled_jobs_seconds_past_its_timeout_are_counted_when_health_reads_them(huey):
    from runner.readmodel.health import check

    # Given a worker whose heartbeat, 4s ago, said a job was 3s past its timeout
    store, now = huey.jobs.store, time.time()
    store.register("h:1:1", concurrency=1, queues=(), now=now - 4)
    store.heartbeat("h:1:1", [], lease_seconds=30, now=now - 4,
                    status="stalled: job j (t) 3s past its 1s timeout")
    # When health reads it now, Then the job is 7s past its timeout
    report = check(store, huey.settings, now=now)
    assert report.reason == "worker stalled: job j (t) 7s past its 1s timeout (worker h:1:1)"


def test_no_worker_is_unhealthy(huey, capsys):
    assert health(huey, capsys)[0] == 1


@pytest.mark.parametrize("facts, reason", [
    (HealthFacts(1.0, {"q": 5.0}, {"s": 0.0}), "ok"),
    (HealthFacts(None, {}, None), "no running worker"),
    (HealthFacts(11.0, {}, None), "heartbeat is stale"),
    (HealthFacts(1.0, {"q": 601.0}, None), "queue 'q' stuck"),
    (HealthFacts(1.0, {}, {"s": 301.0}), "schedule 's'"),
    (HealthFacts(1.0, {}, None, database_problem="quick_check: bad"), "database: quick_check"),
    (HealthFacts(1.0, {}, None, paused="disk full"), "worker not claiming: disk full"),
    (HealthFacts(1.0, {}, None, stalled="job j (t) 3s past its 1s timeout"),
     "worker stalled: job j (t) 3s past its 1s timeout"),
])
def test_evaluate_is_a_pure_decision(facts, reason):
    report = evaluate(facts, **LIMITS)
    assert report.ok == (reason == "ok")
    assert reason in report.reason


@pytest.mark.parametrize("offsets, reason", [
    ({"a": 14.0, "b": -14.0}, "ok"),
    ({"a": 0.1, "b": 120.0}, "clock drift: b's clock is 2m00s ahead of the server's (limit "
                             "15.0s)"),
    ({"a": -20.0}, "clock drift: a's clock is 20.0s behind the server's"),
])
def test_a_worker_whose_clock_runs_off_the_servers_past_the_limit_is_unhealthy(offsets,
                                                                                reason):
    # Its queue also waits (a host behind finds due jobs not due yet): the drift is named.
    facts = HealthFacts(1.0, {"q": 601.0 if reason != "ok" else 1.0}, None,
                        clock_offsets=offsets)
    report = evaluate(facts, **LIMITS, max_clock_drift=15.0)
    assert report.ok == (reason == "ok")
    assert report.reason.startswith(reason)


def test_when_every_worker_is_as_far_off_the_servers_clock_is_suspected():
    alike = clock_problem({"a": 3600.0, "b": 3601.0}, 15.0)
    assert alike.startswith("clock drift: b's clock is 1h00m ahead")  # the furthest
    assert alike.endswith("so the server's may be wrong")
    assert not clock_problem({"a": 3600.0, "b": 0.5}, 15.0).endswith("may be wrong")
    assert clock_problem({"a": 3600.0}, 0) is None  # 0: not checked


def _worker(host: str, heartbeat_at: float, offset: float | None) -> WorkerRow:
    return WorkerRow(f"{host}:1:1", host, 1, 0.0, heartbeat_at, None, "running", 1, None,
                     None, None, 0, 0, None, offset)


def test_offsets_come_from_live_workers_that_measured_them_by_server_time():
    now = 1_700_000_000.0
    workers = [_worker("ahead", now + 120.0, 120.0),  # fresh, by the server's clock
               _worker("behind", now - 120.0, -120.0),  # fresh too
               _worker("gone", now - 600.0, 300.0),  # its last heartbeat is 15 min old
               _worker("sqlite", now, None)]
    assert clock_offsets(workers, now, heartbeat_max_age=10.0) == {"ahead": 120.0,
                                                                   "behind": -120.0}


def test_schedule_lag_check_names_the_worst_schedule():
    assert schedule_lag_problem(None, 60) is None
    assert schedule_lag_problem({"a": 10.0}, 60) is None
    assert "'b' is 2m00s late" in schedule_lag_problem({"a": 90.0, "b": 120.0}, 60)
    assert schedule_lag_problem({"b": 120.0}, 0) is None  # 0 disables the check


def fill_to_cap(path, headroom_pages):
    """Fill the file so only ``headroom_pages`` pages remain under a cap; returns the cap."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA incremental_vacuum")
    conn.execute("CREATE TABLE filler (b BLOB)")
    for _ in range(20):
        conn.execute("INSERT INTO filler VALUES (randomblob(4000))")
    cap = conn.execute("PRAGMA page_count").fetchone()[0] + headroom_pages
    return conn, cap


def test_a_full_disk_is_named_rather_than_a_stale_heartbeat(huey, tmp_path, capsys):
    # A worker whose heartbeat stopped because its writes no longer fit
    db = huey.jobs.db
    fresh_worker(db)
    db.write(lambda c: c.execute("UPDATE runner_worker SET heartbeat_at = heartbeat_at - 600"))
    conn, cap = fill_to_cap(db.path, headroom_pages=0)
    settings = write_settings(tmp_path, extra=f"max_page_count = {cap}\n",
                              name="full.toml")
    capsys.readouterr()
    code = cli(["--settings", str(settings), "health"])
    out = capsys.readouterr().out.strip()
    assert code == 1 and out.startswith("unhealthy: disk full: "), out
    assert "heartbeat" not in out
    # Once there is room again, the stale heartbeat is what is left to report
    conn.execute("DROP TABLE filler")
    conn.close()
    code = cli(["--settings", str(settings), "health"])
    assert capsys.readouterr().out.startswith("unhealthy: worker heartbeat is stale")


def test_evaluate_names_a_full_disk_before_anything_else():
    facts = HealthFacts(999.0, {"default": 9999.0}, None, disk_problem="disk full: no room")
    assert evaluate(facts, **LIMITS) == HealthReport(False, "disk full: no room")
