"""The dashboard's health banner says what ``runner health`` says, at every verdict."""

from __future__ import annotations

import time

import pytest

from runner.readmodel.dashboard_health import health_limits, health_verdict
from runner.readmodel.health import check
from runner.store.factory import open_store
from tests import jobs
from tests.unit.test_metrics import add_schedule_row


def worker(db, heartbeat_age: float, status: str | None = None) -> None:
    now = time.time()
    db.write(lambda c: c.execute(
        "INSERT INTO runner_worker (id, host, pid, started_at, heartbeat_at, status) "
        "VALUES ('h:1:1', 'h', 1, ?, ?, ?)", (now, now - heartbeat_age, status)))


def stuck_job(db) -> None:
    job = jobs.add(1, 1)
    db.write(lambda c: c.execute("UPDATE runner_job SET run_at = run_at - 3600 WHERE id = ?",
                                 (job.id,)))


@pytest.mark.parametrize("seed, reason", [
    (lambda db: worker(db, 1), "ok"),
    (lambda db: None, "no running worker"),
    (lambda db: worker(db, 3600), "worker heartbeat is stale"),
    (lambda db: (worker(db, 1), stuck_job(db)), "queue 'default' stuck"),
    (lambda db: (worker(db, 1), add_schedule_row(db, "nightly", time.time() - 1800)),
     "scheduler lagging: schedule 'nightly'"),
    (lambda db: worker(db, 1, "paused: disk full"), "worker not claiming: disk full"),
    (lambda db: worker(db, 1, "stalled: job abc (stuck) 6s past its 3s timeout"),
     "worker stalled: job abc (stuck)"),
    (lambda db: worker(db, 1, "stalled: suspect job abc runs alone (36s): the worker claims "
                              "nothing else"), "worker stalled: suspect job abc runs alone"),
    (lambda db: worker(db, 1, "stalled: a suspect job waits to run alone (31s): the worker "
                              "finishes its jobs first and claims nothing else"),
     "worker stalled: a suspect job waits to run alone"),
], ids=["ok", "no worker", "stale", "stuck queue", "lagging schedule", "paused", "overrun",
        "suspect alone", "suspect waits"])
def test_the_banner_verdict_is_the_cli_verdict(huey, seed, reason):
    seed(huey.jobs.db)
    now = time.time()
    reader = open_store(huey.jobs.path, readonly=True)
    banner = health_verdict(reader, health_limits(huey.settings), now)
    cli = check(huey.jobs.store, huey.settings, now=now)
    assert (banner.ok, banner.reason.split(" (")[0]) == (cli.ok, cli.reason.split(" (")[0])
    assert reason in banner.reason
