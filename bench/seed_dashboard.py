"""Test data for the dashboard benchmark: a jobs database of a million rows, written fast.

``seed(path, jobs=1_000_000, logs=100_000)`` creates the runner's schema and
bulk-inserts jobs with ``executemany`` in large transactions: 50 tasks, 5
queues, a week of history (the newest hour included, for the rate charts),
mixed states, failed attempts with tracebacks, stale worker rows and, when the
schema has a ``runner_log`` table, log lines. SQL here is test-data generation
only; nothing in the runner or the dashboard depends on it.

Seeded waiting jobs get priority -1 so that a benchmark worker's own jobs
(priority 0) are claimed first through the claim index.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from pathlib import Path

from runner.store.sqlite.counters import recount_waiting
from runner.store.sqlite.models import create_schema

TASKS = [f"app.tasks.task_{n:02d}" for n in range(50)]
QUEUES = ["default", "mail", "reports", "media", "maintenance"]
#: (state, share of all jobs)
STATES = [("completed", 0.80), ("dead", 0.05), ("cancelled", 0.02), ("available", 0.06),
          ("scheduled", 0.04), ("retrying", 0.0295), ("executing", 0.0005)]
ERRORS = [("ValueError", "invalid literal for int() with base 10: 'x{}'"),
          ("ConnectionError", "connection refused by smtp.example.com:{}"),
          ("TimeoutError", "task exceeded its timeout of {}s"),
          ("KeyError", "'customer_{}'"),
          ("Fatal", "account {} is closed")]
TRACEBACK = ("Traceback (most recent call last):\n"
             '  File "/srv/app/tasks.py", line 42, in run\n    result = handler(payload)\n'
             '  File "/srv/app/handlers.py", line 117, in handler\n    raise {type}({msg!r})\n'
             "{type}: {msg}\n")
BATCH = 50_000
WEEK = 7 * 86400.0


def _pick_state(rng: random.Random) -> str:
    roll = rng.random()
    for state, share in STATES:
        if roll < share:
            return state
        roll -= share
    return "completed"


def seed(path: str | Path, *, jobs: int = 1_000_000, logs: int = 100_000,
         now: float | None = None) -> dict[str, int]:
    """Write a fresh database at ``path``; returns rows written per table."""
    at = time.time() if now is None else now
    target = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-200000")
    create_schema(conn)
    rng = random.Random(42)
    start = at - WEEK
    step = WEEK / jobs
    written = {"jobs": 0, "errors": 0, "logs": 0}
    completed_ids: list[str] = []
    for first in range(0, jobs, BATCH):
        rows, errors = [], []
        for i in range(first, min(jobs, first + BATCH)):
            job_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
            state = _pick_state(rng)
            created = start + i * step
            task = TASKS[i % 50]
            queue = QUEUES[i % 5]
            waiting = state in ("available", "scheduled", "retrying")
            run_at = created + (3600 if state == "scheduled" else 0)
            started = created + 0.2 if state in ("completed", "dead", "executing") else None
            finished = created + 0.2 + rng.random() if state in ("completed", "dead",
                                                                 "cancelled") else None
            error_type = message = trace = None
            attempt = 0 if state in ("available", "scheduled", "cancelled") else 1
            if state in ("dead", "retrying"):
                error_type, template = ERRORS[i % len(ERRORS)]
                message = template.format(i % 7)
                trace = TRACEBACK.format(type=error_type, msg=message)
                errors.append((job_id, 1, "error", error_type, message, trace, "bench-worker",
                               created + 0.2, created + 0.5))
            if state == "completed" and len(completed_ids) < 20_000 and i > jobs - 40_000:
                completed_ids.append(job_id)
            rows.append((job_id, task, queue, -1 if waiting else 0, state, b"seeded",
                         json.dumps({"args": [i], "kwargs": {}}), attempt, 3, run_at, created,
                         started, finished, "bench-ghost" if state == "executing" else None,
                         created + 60 if state == "executing" else None,
                         1 if error_type else 0, created + 0.5 if error_type else None,
                         created + 0.5 if error_type else None, error_type, message, trace))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO runner_job (id, task, queue, priority, state, data, args, attempt, "
            "max_attempts, run_at, created_at, started_at, finished_at, lease_owner, "
            "lease_expires_at, failures, first_failed_at, last_failed_at, error_type, "
            "error_message, last_error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows)
        conn.executemany(
            "INSERT INTO runner_job_error (job_id, attempt, kind, error_type, message, "
            "traceback, worker, started_at, failed_at) VALUES (?,?,?,?,?,?,?,?,?)", errors)
        conn.execute("COMMIT")
        written["jobs"] += len(rows)
        written["errors"] += len(errors)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT OR REPLACE INTO runner_worker (id, host, pid, started_at, heartbeat_at, state, "
        "concurrency, queues, rss_bytes, cpu_percent, running, processed) "
        "VALUES (?,?,?,?,?,'running',8,'',?,?,0,?)",
        [(f"bench-{n}", "bench-host", 10_000 + n, at - 7200, at - 600, 80_000_000, 3.0, 12_345)
         for n in range(2)])
    recount_waiting(conn)  # rows written here, not through an enqueue, are counted once
    conn.execute("COMMIT")
    has_logs = conn.execute("SELECT 1 FROM sqlite_master WHERE name='runner_log'").fetchone()
    if has_logs and logs:
        levels = [10, 20, 20, 20, 30, 40]
        for first in range(0, logs, BATCH):
            batch = []
            for n in range(first, min(logs, first + BATCH)):
                job = completed_ids[n % len(completed_ids)] if completed_ids and n % 4 else None
                batch.append((at - 3600 + n * 3600 / logs, levels[n % 6],
                              "app.tasks" if job else "runner.worker",
                              f"processed record {n} of batch {n // 100}", job,
                              TASKS[n % 50] if job else None, None if job else "bench-0"))
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO runner_log (created_at, level, logger, message, job_id,"
                             " task, worker) VALUES (?,?,?,?,?,?,?)", batch)
            conn.execute("COMMIT")
            written["logs"] += len(batch)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return written
