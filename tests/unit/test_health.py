"""health: 0 with a live worker; 1 with a stale heartbeat, a stuck queue, a lagging scheduler."""

from __future__ import annotations

import sqlite3
import time

import pytest

from runner.cli import main as cli
from runner.readmodel.health import HealthFacts, HealthReport, evaluate, schedule_lag_problem
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
