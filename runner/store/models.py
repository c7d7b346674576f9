"""The tables of the jobs database, the job states, and the row value objects.

A job is one row of ``runner_job`` that moves through :class:`JobState`; there
is no separate history to keep in sync. Tables carry a ``runner_`` prefix so
they never clash with huey's own ``task``/``schedule``/``kv``/``counter``.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from runner.store import counters, leases

SCHEMA_VERSION = 1


class JobState(StrEnum):
    """Where a job is in its life."""

    #: waiting for a worker; due now
    AVAILABLE = "available"
    #: waiting for its ``eta``/``delay``
    SCHEDULED = "scheduled"
    #: claimed by a worker, under a lease
    EXECUTING = "executing"
    #: failed, waiting for its next attempt
    RETRYING = "retrying"
    #: finished without error
    COMPLETED = "completed"
    #: failed for good (retries used up, Fatal, unknown task, worker died)
    DEAD = "dead"
    #: revoked, expired or discarded before it could finish
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


#: States a worker may claim from once ``run_at`` has passed.
WAITING = (JobState.AVAILABLE, JobState.SCHEDULED, JobState.RETRYING)
#: States a job never leaves on its own.
FINAL = (JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED)

#: ``WAITING`` as an SQL list; partial indexes and the queries they serve spell it alike.
WAITING_SQL = "(" + ",".join(f"'{s.value}'" for s in WAITING) + ")"
#: Waiting or running: the states of a job that is not finished.
LIVE_SQL = WAITING_SQL[:-1] + ",'executing')"

#: Name of the built-in task that fans events out to their handlers.
DISPATCH_TASK = "runner.events.dispatch"

#: The condition of a schedule the scheduler fires (matches the partial index).
SCHEDULE_ACTIVE = "enabled = 1 AND paused = 0 AND orphaned = 0"

DDL = [
    """CREATE TABLE IF NOT EXISTS runner_meta (
        key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS runner_job (
        id TEXT PRIMARY KEY,
        task TEXT NOT NULL,
        queue TEXT NOT NULL DEFAULT 'default',
        priority INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        data BLOB NOT NULL,
        args TEXT,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 1,
        run_at REAL NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        lease_owner TEXT,
        lease_expires_at REAL,
        crashes INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        first_failed_at REAL,
        last_failed_at REAL,
        error_type TEXT,
        error_message TEXT,
        last_error TEXT,
        reason TEXT,
        progress_done REAL,
        progress_total REAL,
        progress_message TEXT,
        unique_key TEXT,
        event_id TEXT,
        schedule TEXT,
        CHECK (state IN {WAITING_SQL[:-1]},'executing','completed','dead','cancelled')))""",
    # The claim: best priority first, then oldest due time, among waiting jobs only.
    f"""CREATE INDEX IF NOT EXISTS runner_job_claim ON runner_job
        (priority DESC, run_at) WHERE state IN {WAITING_SQL}""",
    # Jobs that were running when a worker died run alone (see JobStorage._claim).
    f"""CREATE INDEX IF NOT EXISTS runner_job_suspect ON runner_job
        (priority DESC, run_at) WHERE crashes > 0 AND state IN {WAITING_SQL}""",
    f"""CREATE INDEX IF NOT EXISTS runner_job_queue_waiting ON runner_job
        (queue, run_at) WHERE state IN {WAITING_SQL}""",
    """CREATE INDEX IF NOT EXISTS runner_job_lease ON runner_job
        (lease_expires_at) WHERE state = 'executing'""",
    "CREATE INDEX IF NOT EXISTS runner_job_state_created ON runner_job (state, created_at)",
    "CREATE INDEX IF NOT EXISTS runner_job_task ON runner_job (task, created_at)",
    # Partial: an insert (finished_at NULL) does not touch it.
    "CREATE INDEX IF NOT EXISTS runner_job_finished ON runner_job (finished_at) "
    "WHERE finished_at IS NOT NULL",
    # The dashboard's Failures screen groups failed jobs by error; only failed rows are in it.
    """CREATE INDEX IF NOT EXISTS runner_job_failure ON runner_job
        (error_type, error_message, state, task, last_failed_at)
        WHERE state IN ('retrying','dead')""",
    """CREATE UNIQUE INDEX IF NOT EXISTS runner_job_unique ON runner_job (unique_key)
        WHERE unique_key IS NOT NULL AND state NOT IN ('completed','dead','cancelled')""",
    # The due dispatch job an emit can share (at most a few rows: see event_store).
    "CREATE INDEX IF NOT EXISTS runner_job_dispatch_waiting ON runner_job (run_at) "
    f"WHERE task = '{DISPATCH_TASK}' AND state = 'available'",
    "CREATE INDEX IF NOT EXISTS runner_job_event ON runner_job (event_id) "
    "WHERE event_id IS NOT NULL",
    # One row per failed attempt: the timeline and every traceback.
    """CREATE TABLE IF NOT EXISTS runner_job_error (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        kind TEXT NOT NULL,
        error_type TEXT,
        message TEXT,
        traceback TEXT,
        worker TEXT,
        started_at REAL,
        failed_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS runner_job_error_job ON runner_job_error (job_id, attempt)",
    "CREATE INDEX IF NOT EXISTS runner_job_error_failed ON runner_job_error (failed_at)",
    # huey's key/value store (results, revocations, locks) and counters.
    """CREATE TABLE IF NOT EXISTS runner_kv (
        key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)""",
    """CREATE TABLE IF NOT EXISTS runner_counter (
        key TEXT PRIMARY KEY, value INTEGER NOT NULL DEFAULT 0)""",
    # Waiting jobs per queue, kept exact by the triggers below inside the very
    # statement that moves a job into or out of a waiting state (whatever code
    # writes it), so a queue bound costs one row read whatever the backlog.
    """CREATE TABLE IF NOT EXISTS runner_queue (
        queue TEXT PRIMARY KEY, waiting INTEGER NOT NULL DEFAULT 0)""",
    f"""CREATE TRIGGER IF NOT EXISTS runner_queue_insert AFTER INSERT ON runner_job
        WHEN NEW.state IN {WAITING_SQL} BEGIN
        INSERT INTO runner_queue (queue, waiting) VALUES (NEW.queue, 1)
            ON CONFLICT (queue) DO UPDATE SET waiting = waiting + 1; END""",
    f"""CREATE TRIGGER IF NOT EXISTS runner_queue_delete AFTER DELETE ON runner_job
        WHEN OLD.state IN {WAITING_SQL} BEGIN
        UPDATE runner_queue SET waiting = waiting - 1 WHERE queue = OLD.queue; END""",
    f"""CREATE TRIGGER IF NOT EXISTS runner_queue_leave AFTER UPDATE OF state, queue
        ON runner_job WHEN OLD.state IN {WAITING_SQL}
        AND (NEW.state NOT IN {WAITING_SQL} OR NEW.queue IS NOT OLD.queue) BEGIN
        UPDATE runner_queue SET waiting = waiting - 1 WHERE queue = OLD.queue; END""",
    f"""CREATE TRIGGER IF NOT EXISTS runner_queue_enter AFTER UPDATE OF state, queue
        ON runner_job WHEN NEW.state IN {WAITING_SQL}
        AND (OLD.state NOT IN {WAITING_SQL} OR NEW.queue IS NOT OLD.queue) BEGIN
        INSERT INTO runner_queue (queue, waiting) VALUES (NEW.queue, 1)
            ON CONFLICT (queue) DO UPDATE SET waiting = waiting + 1; END""",
    # Periodic schedules: one row each; firing is a compare-and-set on next_fire_at.
    """CREATE TABLE IF NOT EXISTS runner_schedule (
        name TEXT PRIMARY KEY,
        task TEXT NOT NULL,
        expression TEXT NOT NULL,
        tz TEXT NOT NULL,
        misfire TEXT NOT NULL,
        overlap TEXT NOT NULL,
        next_fire_at REAL,
        last_slot_at REAL,
        last_fired_at REAL,
        last_lag REAL,
        last_job_id TEXT,
        enabled INTEGER NOT NULL DEFAULT 1,
        paused INTEGER NOT NULL DEFAULT 0,
        orphaned INTEGER NOT NULL DEFAULT 0,
        skip_next INTEGER NOT NULL DEFAULT 0,
        fired INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        last_skip_at REAL,
        last_skip_reason TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL)""",
    f"""CREATE INDEX IF NOT EXISTS runner_schedule_due ON runner_schedule (next_fire_at)
        WHERE {SCHEDULE_ACTIVE}""",
    # One row per fired slot: UNIQUE keeps a slot from ever firing twice.
    """CREATE TABLE IF NOT EXISTS runner_schedule_run (
        id INTEGER PRIMARY KEY,
        schedule TEXT NOT NULL,
        slot REAL NOT NULL,
        manual INTEGER NOT NULL DEFAULT 0,
        fired_at REAL NOT NULL,
        job_id TEXT,
        outcome TEXT NOT NULL,
        UNIQUE (schedule, slot, manual))""",
    "CREATE INDEX IF NOT EXISTS runner_schedule_run_fired ON runner_schedule_run (fired_at)",
    "CREATE INDEX IF NOT EXISTS runner_job_schedule ON runner_job (schedule, state) "
    "WHERE schedule IS NOT NULL",
    # Every run.py process: liveness, resources and what it serves.
    """CREATE TABLE IF NOT EXISTS runner_worker (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        stopped_at REAL,
        state TEXT NOT NULL DEFAULT 'running',
        concurrency INTEGER NOT NULL DEFAULT 0,
        queues TEXT,
        rss_bytes INTEGER,
        cpu_percent REAL,
        running INTEGER NOT NULL DEFAULT 0,
        processed INTEGER NOT NULL DEFAULT 0,
        status TEXT)""",
    # Events: one row per emit; handler outcomes are the jobs linked by event_id.
    """CREATE TABLE IF NOT EXISTS runner_event (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        key TEXT,
        emitted_at REAL NOT NULL,
        source TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        dispatched_at REAL,
        dispatch_job TEXT,
        handlers INTEGER NOT NULL DEFAULT 0,
        deliveries INTEGER NOT NULL DEFAULT 0,
        CHECK (status IN ('pending','dispatched','unhandled')))""",
    "CREATE INDEX IF NOT EXISTS runner_event_emitted ON runner_event (emitted_at)",
    # Undispatched events, oldest first: what a dispatch job sweeps up besides its own.
    "CREATE INDEX IF NOT EXISTS runner_event_pending ON runner_event (emitted_at) "
    "WHERE status = 'pending'",
    # Events no handler took, for the dashboard's count and list (they are rare).
    "CREATE INDEX IF NOT EXISTS runner_event_unhandled ON runner_event (emitted_at) "
    "WHERE status = 'unhandled'",
    # Idempotency keys: the newest event of a key, looked up at every keyed emit.
    "CREATE INDEX IF NOT EXISTS runner_event_key ON runner_event (key, emitted_at) "
    "WHERE key IS NOT NULL",
    # Log records: those emitted inside a job (job_id set) and the worker's own.
    """CREATE TABLE IF NOT EXISTS runner_log (
        id INTEGER PRIMARY KEY,
        created_at REAL NOT NULL,
        level INTEGER NOT NULL,
        logger TEXT NOT NULL,
        message TEXT NOT NULL,
        job_id TEXT,
        task TEXT,
        worker TEXT)""",
    "CREATE INDEX IF NOT EXISTS runner_log_job ON runner_log (job_id, id) "
    "WHERE job_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS runner_log_created ON runner_log (created_at)",
    # Lifetime counters per task and queue (see runner.counters).
    *counters.DDL,
    *leases.DDL,
]

_DDL_NAME = re.compile(r"IF NOT EXISTS (\w+)")
#: The count of waiting jobs per queue and the triggers that keep it.
_QUEUE_COUNT_OBJECTS = ("runner_queue", "runner_queue_insert", "runner_queue_delete",
                        "runner_queue_leave", "runner_queue_enter")


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table and index that is missing (safe to run concurrently).

    ``auto_vacuum`` is set when the connection opens (:class:`runner.db.Database`):
    SQLite ignores it inside a transaction and once WAL mode is on.
    """
    marks = ",".join("?" * len(_QUEUE_COUNT_OBJECTS))
    counted = conn.execute(f"SELECT count(*) FROM sqlite_master WHERE name IN ({marks})",
                           _QUEUE_COUNT_OBJECTS).fetchone()[0]
    for statement in DDL:
        conn.execute(statement)
    if counted < len(_QUEUE_COUNT_OBJECTS):  # a file from before the counts: count once
        conn.execute("DELETE FROM runner_queue")
        conn.execute(f"INSERT INTO runner_queue (queue, waiting) SELECT queue, count(*) "
                     f"FROM runner_job WHERE state IN {WAITING_SQL} GROUP BY queue")
    conn.execute("INSERT OR IGNORE INTO runner_meta (key, value) VALUES ('schema', ?)",
                 (str(SCHEMA_VERSION),))


def schema_is_current(conn: sqlite3.Connection) -> bool:
    """True when every table and index of :data:`DDL` exists (no write needed to open)."""
    wanted = {m.group(1) for statement in DDL for m in _DDL_NAME.finditer(statement)}
    present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    return wanted <= present


def is_jobs_database(conn: sqlite3.Connection) -> bool:
    """True when the file holds our tables (used to refuse foreign files)."""
    rows = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='runner_job'").fetchall()
    return bool(rows)


@dataclass(frozen=True)
class JobRow:
    """A job as the CLI and the dashboard see it."""

    id: str
    task: str
    queue: str
    priority: int
    state: str
    args: str | None
    attempt: int
    max_attempts: int
    run_at: float
    created_at: float
    started_at: float | None
    finished_at: float | None
    lease_owner: str | None
    crashes: int
    failures: int
    first_failed_at: float | None
    last_failed_at: float | None
    error_type: str | None
    error_message: str | None
    last_error: str | None
    reason: str | None
    progress_done: float | None
    progress_total: float | None
    progress_message: str | None
    event_id: str | None
    schedule: str | None

    @property
    def duration(self) -> float | None:
        """Seconds the last attempt ran, when it has started."""
        if self.started_at is None:
            return None
        if self.finished_at is None or self.finished_at < self.started_at:
            return None
        return self.finished_at - self.started_at


JOB_COLUMNS = ", ".join(JobRow.__dataclass_fields__)


@dataclass(frozen=True)
class AttemptError:
    """One failed attempt of a job."""

    attempt: int
    kind: str
    error_type: str | None
    message: str | None
    traceback: str | None
    worker: str | None
    started_at: float | None
    failed_at: float


@dataclass(frozen=True)
class LogRow:
    """One stored log record."""

    id: int
    created_at: float
    level: int
    logger: str
    message: str
    job_id: str | None
    task: str | None
    worker: str | None
