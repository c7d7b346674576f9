"""Chaos: a real worker is SIGKILLed at random moments over and over; nothing is lost."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import defaultdict

import pytest

from runner.store.sqlite import queries
from tests import jobs
from tests.conftest import read_records, wait_for, write_settings

JOBS = 2000
KILLS = 100


@pytest.mark.chaos
@pytest.mark.timeout(400)
def test_random_sigkills_lose_no_job_and_duplicate_only_killed_attempts(
        huey, tmp_path, make_worker, record_file):
    # crash_limit 0: every job must finish however often it is caught in a kill.
    settings = write_settings(tmp_path, name="chaos.toml", worker={
        "crash_limit": 0, "max_concurrent_tasks": 2, "lease_seconds": 30})
    ids = {jobs.short_work(n).id: n for n in range(JOBS)}
    rng = random.Random(1234)
    for kill in range(KILLS):
        worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
        if kill % 10 == 9:  # every tenth kill lands in a worker that is running jobs,
            # however slowly a loaded machine starts it; the others anywhere from start-up on
            wait_for(lambda w=worker: "ready:" in w.output(), timeout=60,
                     message="the worker to be ready")
        time.sleep(rng.uniform(0.05, 0.8))  # the kill lands at a random moment
        worker.kill()

    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    db = huey.jobs.db
    wait_for(lambda: queries.counts_by_state(db)["completed"] == JOBS, timeout=120,
             interval=0.2, message="every job to complete")

    runs: dict[int, list[int]] = defaultdict(list)
    for line in read_records(record_file):
        n, attempt = line.split()
        runs[int(n)].append(int(attempt))
    assert set(runs) == set(range(JOBS)), "every job ran at least once"
    for n, attempts in runs.items():
        # A job runs again only as a new attempt, after a kill interrupted the previous one.
        assert len(attempts) == len(set(attempts)), f"job {n} ran twice in one attempt"
    rows = {row.id: row for row in queries.list_jobs(db, limit=JOBS)}
    assert len(rows) == JOBS and set(rows) == set(ids)
    for job_id, row in rows.items():
        assert row.attempt == row.crashes + 1, (row.id, row.attempt, row.crashes)
        assert max(runs[ids[job_id]]) <= row.attempt
    assert sum(len(a) for a in runs.values()) > JOBS or any(r.crashes for r in rows.values())
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
