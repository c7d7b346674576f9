"""Window figures (``stats``, the dashboard): counts match a known workload."""

from __future__ import annotations

import time

from runner.cli import main as cli
from runner.readmodel import metrics
from runner.store.factory import store_for
from runner.testing import drain
from tests import jobs
from tests.conformance.helpers import OWNER, failure, job


def test_window_figures_match_a_known_workload(huey, capsys):
    # Given 5 successes, 2 jobs that fail 3 attempts each, and 4 waiting jobs
    for i in range(5):
        jobs.add(i, i)
    jobs.always_fails("a")
    jobs.always_fails("b")
    drain(include_scheduled=True)
    for _ in range(4):
        jobs.noop.schedule(delay=3600)
    snap = metrics.collect(huey.jobs.store)
    # Then the snapshot counts them
    add = next(t for t in snap.tasks if t.task == "add")
    fails = next(t for t in snap.tasks if t.task == "always_fails")
    assert (add.stats.completed, add.stats.failed, add.dead) == (5, 0, 0)
    assert sum(add.stats.completed_per_minute) == 5 and len(add.stats.completed_per_minute) == 60
    assert (fails.stats.failed, fails.stats.retries, fails.stats.died, fails.dead) == (6, 4, 2, 2)
    assert fails.stats.error_rate == 1.0
    assert add.stats.durations is not None and add.stats.durations[0] <= add.stats.durations[2]
    assert snap.states["scheduled"] == 4 and snap.states["completed"] == 5
    assert snap.schedule_lags == {}  # no schedules
    # And `stats` prints the same tables
    assert cli(["--settings", str(huey.settings.path), "stats"]) == 0
    out = capsys.readouterr().out
    assert "always_fails" in out and "per queue" in out


def test_schedule_lag_is_how_late_a_due_fire_is(huey):
    db = huey.jobs.db
    add_schedule_row(db, "late", 1000.0)
    add_schedule_row(db, "on_time", 5000.0)
    snap = metrics.collect(store_for(db), now=1300.0)
    assert snap.schedule_lags == {"late": 300.0, "on_time": 0.0}


def test_per_minute_buckets_and_percentiles_are_pure():
    assert metrics.per_minute([0.0, 59.0, 60.0, 179.0, 180.0], now=180.0, minutes=3) == (2, 1, 2)
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0


def add_schedule_row(db, name, next_fire_at):
    """A minimal active schedule row, as the scheduler would have written it."""
    db.write(lambda c: c.execute(
        "INSERT INTO runner_schedule (name, task, expression, tz, misfire, overlap, "
        "next_fire_at, created_at, updated_at) VALUES (?, 't', '* * * * *', 'UTC', 'once', "
        "'skip', ?, 0, 0)", (name, next_fire_at)))


def test_stats_counts_waiting_as_ready_now_and_scheduled_and_retrying_apart(huey, capsys):
    # Given in one queue: 2 jobs ready now, 1 due later, 1 failed and retrying later
    store, now = huey.jobs.store, time.time()
    flaky = job(now - 1, queue="reports", max_attempts=3)
    store.enqueue([flaky], now=now)
    [claimed] = store.claim(now=now, owner=OWNER, lease_seconds=30, want=1,
                            queues=("reports",)).claimed
    store.retry(flaky.id, claimed.attempt, failure(), worker=OWNER, now=now,
                run_at=now + 600, reason="retrying")
    store.enqueue([job(now - 1, queue="reports"), job(now, queue="reports"),
                   job(now + 3600, queue="reports")], now=now)
    # Then `stats` reads as `queues` and the dashboard do: WAITING is ready now
    assert cli(["--settings", str(huey.settings.path), "stats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("QUEUE")).split()
    row = next(line for line in lines if line.startswith("reports")).split()
    counts = dict(zip(header, row, strict=False))
    assert (counts["WAITING"], counts["SCHEDULED"], counts["RETRYING"], counts["RUNNING"]) == (
        "2", "1", "1", "0")
