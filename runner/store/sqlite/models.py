"""The tables of the jobs database, the job states, and the row value objects.

A job is one row of ``runner_job`` that moves through :class:`JobState`; there
is no separate history to keep in sync. Tables carry a ``runner_`` prefix so
they never clash with huey's own ``task``/``schedule``/``kv``/``counter``.
"""

from __future__ import annotations

import re
import sqlite3

from runner.store.rows import DISPATCH_TASK, AttemptError, JobRow, LogRow  # noqa: F401 - re-exported
from runner.store.sqlite import counters, migrations
from runner.store.sqlite.conditions import (
    CLAIMABLE_WHERE,
    FUTURE_WHERE,
    NOT_WAITING,
    PARKED_WHERE,
    WAITING_WHERE,
)
from runner.store.states import (
    EXECUTING_SQL,
    FAILED_SQL,
    FINAL,
    LIVE_SQL,
    WAITING,
    WAITING_SQL,
    JobState,
    sql_is,
)
from runner.store.tables import TABLES, create_table_sql, job_columns

#: Re-exported from runner.store.sqlite.migrations, where it is bumped.
SCHEMA_VERSION = migrations.SCHEMA_VERSION


#: Re-exported: the states live in :mod:`runner.store.states`.
__all__ = ["JobState", "WAITING", "FINAL", "WAITING_SQL", "LIVE_SQL"]


#: The condition of a schedule the scheduler fires (matches the partial index).
SCHEDULE_ACTIVE = "enabled = 1 AND paused = 0 AND orphaned = 0"

#: Indexes, per dialect (SQLite's here): partial indexes that the hot statements
#: name with ``INDEXED BY``. The tables come from the models of runner.store.tables.
INDEXES = [
    # The claim: best priority first, then oldest due time, among waiting jobs only.
    # Parked jobs (held back by a concurrency limit) are left out: runner.store.parking.
    f"""CREATE INDEX IF NOT EXISTS runner_job_claim ON runner_job
        (priority DESC, run_at) WHERE {CLAIMABLE_WHERE}""",
    # Jobs that were running when a worker died run alone (see JobStorage._claim).
    f"""CREATE INDEX IF NOT EXISTS runner_job_suspect ON runner_job
        (priority DESC, run_at) WHERE crashes > 0 AND {WAITING_WHERE}""",
    # The claim under flow control (weights, limits, aging): one queue's waiting jobs,
    # level by level of priority, oldest due first (see runner.store.sqlite.limits).
    # Also every per-queue read of the backlog (count, oldest, drop_oldest), and with
    # ``state`` last, per-state counts of waiting jobs without reading a row.
    # Parked jobs are in runner_job_parked_queue, of the same shape: a read of a queue's
    # whole backlog reads both.
    f"""CREATE INDEX IF NOT EXISTS runner_job_queue_claim ON runner_job
        (queue, priority DESC, run_at, state) WHERE {CLAIMABLE_WHERE}""",
    # Jobs a concurrency limit parked (runner.store.parking): by group, queue and level
    # (letting a group's best out), and in runner_job_queue_claim's order (every read of
    # a queue's whole backlog reads both). Neither names the state, which every claim
    # and every outcome writes: those updates then leave both alone.
    f"""CREATE INDEX IF NOT EXISTS runner_job_parked ON runner_job
        (task, parked, queue, priority, run_at) WHERE {PARKED_WHERE}""",
    f"""CREATE INDEX IF NOT EXISTS runner_job_parked_queue ON runner_job
        (queue, priority DESC, run_at) WHERE {PARKED_WHERE}""",
    f"""CREATE INDEX IF NOT EXISTS runner_job_lease ON runner_job
        (lease_expires_at) WHERE state = {EXECUTING_SQL}""",
    # History by state and by task, newest first. Waiting jobs are left out, so an
    # enqueue writes neither (the two indexes above hold them): a query uses these
    # only when it spells NOT_WAITING (see runner.store.sqlite.queries.job_where).
    "CREATE INDEX IF NOT EXISTS runner_job_state_created ON runner_job (state, created_at) "
    f"WHERE {NOT_WAITING}",
    f"CREATE INDEX IF NOT EXISTS runner_job_task ON runner_job (task, created_at) "
    f"WHERE {NOT_WAITING}",
    # Scheduled and retrying jobs by state, newest first: a job due now is not in it.
    f"CREATE INDEX IF NOT EXISTS runner_job_future ON runner_job (state, created_at) "
    f"WHERE {FUTURE_WHERE}",
    # Partial: an insert (finished_at NULL) does not touch it.
    "CREATE INDEX IF NOT EXISTS runner_job_finished ON runner_job (finished_at) "
    "WHERE finished_at IS NOT NULL",
    # The dashboard's Failures screen groups failed jobs by error; only failed rows are in it.
    f"""CREATE INDEX IF NOT EXISTS runner_job_failure ON runner_job
        (error_type, error_message, state, task, last_failed_at)
        WHERE state IN {FAILED_SQL}""",
    # Unique jobs: the newest job of a key, looked up inside each enqueue's transaction
    # (which states count, and for how long, is the task's choice, so not a UNIQUE index).
    "CREATE INDEX IF NOT EXISTS runner_job_unique_key ON runner_job (unique_key, created_at) "
    "WHERE unique_key IS NOT NULL",
    # The due dispatch job an emit can share (at most a few rows: see event_store).
    "CREATE INDEX IF NOT EXISTS runner_job_dispatch_waiting ON runner_job (run_at) "
    f"WHERE task = '{DISPATCH_TASK}' AND state = {sql_is(JobState.AVAILABLE)}",
    "CREATE INDEX IF NOT EXISTS runner_job_event ON runner_job (event_id) "
    "WHERE event_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS runner_job_error_job ON runner_job_error (job_id, attempt)",
    "CREATE INDEX IF NOT EXISTS runner_job_error_failed ON runner_job_error (failed_at)",
    f"""CREATE INDEX IF NOT EXISTS runner_schedule_due ON runner_schedule (next_fire_at)
        WHERE {SCHEDULE_ACTIVE}""",
    "CREATE INDEX IF NOT EXISTS runner_schedule_run_fired ON runner_schedule_run (fired_at)",
    "CREATE INDEX IF NOT EXISTS runner_job_schedule ON runner_job (schedule, state) "
    "WHERE schedule IS NOT NULL",
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
    "CREATE INDEX IF NOT EXISTS runner_log_job ON runner_log (job_id, id) "
    "WHERE job_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS runner_log_created ON runner_log (created_at)",
    # Lifetime counters per task and queue (see runner.store.sqlite.counters).
    *counters.TRIGGERS,
]

#: Single enqueues, until the next transaction moves them into runner_job: no index, the
#: columns of a job row an enqueue sets (runner.store.sqlite.transitions.intake).
INTAKE = """CREATE TABLE IF NOT EXISTS runner_intake (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL, task TEXT NOT NULL, queue TEXT NOT NULL,
    priority INTEGER NOT NULL, state TEXT NOT NULL, data BLOB NOT NULL, args TEXT,
    max_attempts INTEGER NOT NULL, run_at REAL NOT NULL, created_at REAL NOT NULL)"""

#: Every statement that creates the schema, tables first.
DDL = [*(create_table_sql(table) for table in TABLES), INTAKE, *INDEXES]

_DDL_NAME = re.compile(r'IF NOT EXISTS "?(\w+)')


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table and index that is missing (safe to run concurrently).

    ``auto_vacuum`` is set when the connection opens (:class:`runner.db.Database`):
    SQLite ignores it inside a transaction and once WAL mode is on.
    """
    for statement in DDL:
        conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO runner_meta (key, value) VALUES ('schema', ?)",
                 (str(migrations.SCHEMA_VERSION),))


def schema_is_current(conn: sqlite3.Connection) -> bool:
    """True when every table and index of :data:`DDL` exists (no write needed to open)."""
    return not missing_schema(conn)


def missing_schema(conn: sqlite3.Connection) -> list[str]:
    """The tables, indexes, triggers and views of :data:`DDL` the file lacks, sorted."""
    wanted = {m.group(1) for statement in DDL for m in _DDL_NAME.finditer(statement)}
    present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    return sorted(wanted - present)


def is_jobs_database(conn: sqlite3.Connection) -> bool:
    """True when the file holds our tables (used to refuse foreign files)."""
    rows = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='runner_job'").fetchall()
    return bool(rows)


#: The select list of a job row (see :func:`runner.store.tables.job_columns`).
JOB_COLUMNS = job_columns()


