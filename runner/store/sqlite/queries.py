"""Read side of the jobs database, shared by the CLI, metrics and the dashboard.

Every function fetches all its rows before returning, so no cursor (and no
snapshot) outlives the call: a held read snapshot keeps SQLite from
checkpointing and grows the WAL without bound.
"""

from __future__ import annotations

import time

from runner.store.rows import JobFilter, QueueDepth, WorkerRow, found_job  # noqa: F401 - re-exported
from runner.store.sqlite.conditions import (
    CLAIMABLE_WHERE,
    FUTURE_WHERE,
    NOT_WAITING,
    PARKED_WHERE,
    WAITING_WHERE,
    holding,
)
from runner.store.sqlite.db import Database, contains_pattern, lookup_id
from runner.store.sqlite.models import JOB_COLUMNS, AttemptError, JobRow
from runner.store.sqlite.transitions import intake
from runner.store.states import (
    ALL,
    EXECUTING_SQL,
    FAILED_SQL,
    FUTURE,
    JobState,
    WorkerState,
    sql_is,
)


def state_is(state: str) -> str:
    """``state = ?`` with the condition of the partial indexes that hold that state.

    SQLite uses a partial index only for a query that spells its condition:
    waiting jobs are in the claim indexes, scheduled and retrying ones also in
    ``runner_job_future``, the others in the state and task indexes.
    """
    return f"state = ? AND {WAITING_WHERE if state == JobState.AVAILABLE else holding(state)}"


def waiting_total(db: Database) -> int:
    """Waiting jobs of every queue, from the counts the triggers keep (no job is read)."""
    return int(db.query("SELECT coalesce(sum(waiting), 0) FROM runner_queue")[0][0])


def state_counts(db: Database) -> dict[str, int]:
    """Jobs per state: covering ranges of the state indexes; available ones are the
    waiting count less the scheduled and retrying ones (none of them is read)."""
    counts = dict.fromkeys((s.value for s in ALL), 0)
    counts.update(db.query(
        f"SELECT state, count(*) FROM runner_job INDEXED BY runner_job_future "
        f"WHERE {FUTURE_WHERE} GROUP BY state"))
    counts.update(db.query(
        f"SELECT state, count(*) FROM runner_job INDEXED BY runner_job_state_created "
        f"WHERE {NOT_WAITING} GROUP BY state"))
    counts[JobState.AVAILABLE.value] = max(0, waiting_total(db) - sum(
        counts[s.value] for s in FUTURE))
    return counts


def job_where(filters: JobFilter, *, like: str = "LIKE") -> tuple[str, list[object]]:
    """The SQL condition of ``filters`` and its parameters.

    ``like`` is the dialect's case-blind ``LIKE``: SQLite's own ignores the case of
    ASCII letters, PostgreSQL's does not (it passes ``ILIKE``).
    """
    clauses, params = [], []
    if filters.state:
        if filters.state == "waiting":
            clauses.append(WAITING_WHERE)
        elif filters.state == "failed":
            clauses.append(f"state IN {FAILED_SQL}")
        else:
            clauses.append(state_is(filters.state))
            params.append(filters.state)
    if filters.queue:
        clauses.append("queue = ?")
        params.append(filters.queue)
    if filters.task:
        clauses.append("task = ?")
        params.append(filters.task)
    if filters.event_id:
        clauses.append("event_id = ?")
        params.append(filters.event_id)
    if filters.worker:
        clauses.append("lease_owner = ?")
        params.append(filters.worker)
    if filters.error is not None:
        # Equality and IS NULL (both dialects, and a range of the failure index), never
        # IS / IS NOT DISTINCT FROM with a parameter, which PostgreSQL answers by a scan.
        for column, value in zip(("error_type", "error_message"), filters.error, strict=True):
            clauses.append(f"{column} IS NULL" if value is None else f"{column} = ?")
            params.extend(() if value is None else (value,))
    if filters.error_text:
        pattern = contains_pattern(filters.error_text)
        clauses.append(f"(error_type {like} ? ESCAPE '\\' OR "
                       f"error_message {like} ? ESCAPE '\\')")
        params.extend([pattern] * 2)
    if filters.text:
        pattern = contains_pattern(filters.text)
        clauses.append(f"(id {like} ? ESCAPE '\\' OR task {like} ? ESCAPE '\\' OR "
                       f"args {like} ? ESCAPE '\\' OR error_message {like} ? ESCAPE '\\')")
        params.extend([pattern] * 4)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_jobs(db: Database, filters: JobFilter | None = None, *, limit: int = 100,
              offset: int = 0) -> list[JobRow]:
    """Jobs matching ``filters``, newest first, one page at a time.

    Jobs of one instant list the last inserted first, as the dashboard's pages do:
    rowid is in every index, so the tie costs no sort.
    """
    where, params = job_where(filters or JobFilter())
    rows = db.query(f"SELECT {JOB_COLUMNS} FROM runner_job{where} "
                    f"ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                    [*params, limit, offset])
    return [JobRow(*row) for row in rows]


def count_jobs(db: Database, filters: JobFilter | None = None) -> int:
    """How many jobs match ``filters``."""
    where, params = job_where(filters or JobFilter())
    return db.query(f"SELECT count(*) FROM runner_job{where}", params)[0][0]


def job_ids(db: Database, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
    """Ids of the jobs matching ``filters`` (for bulk actions)."""
    where, params = job_where(filters)
    return [r[0] for r in db.query(f"SELECT id FROM runner_job{where} LIMIT ?",
                                   [*params, limit])]


def get_job(db: Database, job_id: str) -> JobRow:
    """One job by id, or by a unique start or end of its id.

    Raises:
        JobNotFound: no job, or the prefix is ambiguous.
    """
    def lookup() -> tuple | None:
        found = lookup_id(db, "runner_job", JOB_COLUMNS, job_id)
        if found is None:
            # Not moved out of the intake yet, or moved since the read above (each read
            # is a snapshot of its own): there, else here again.
            found = intake.find(db, job_id) or lookup_id(db, "runner_job", JOB_COLUMNS, job_id)
        return found

    return found_job(lookup, job_id)


def job_errors(db: Database, job_id: str) -> list[AttemptError]:
    """Every failed attempt of a job, oldest first (the timeline)."""
    rows = db.query(
        "SELECT attempt, kind, error_type, message, traceback, worker, started_at, failed_at "
        "FROM runner_job_error WHERE job_id = ? ORDER BY id", (job_id,))
    return [AttemptError(*row) for row in rows]


def counts_by_state(db: Database) -> dict[str, int]:
    """Number of jobs in each state (states with none are 0)."""
    return state_counts(db)


def queue_depths(db: Database, now: float | None = None) -> list[QueueDepth]:
    """Waiting and running jobs per queue, with the age of the oldest due waiting job."""
    at = time.time() if now is None else now
    # Waiting jobs through their index, running ones through the lease index.
    rows = db.query(
        f"SELECT queue, sum({WAITING_WHERE}), sum(state = {EXECUTING_SQL}), "
        f"min(CASE WHEN {WAITING_WHERE} AND run_at <= ? THEN run_at END) FROM ("
        f"SELECT queue, state, run_at FROM runner_job INDEXED BY runner_job_queue_claim "
        f"WHERE {CLAIMABLE_WHERE} UNION ALL SELECT queue, state, run_at "
        f"FROM runner_job INDEXED BY runner_job_parked_queue WHERE {PARKED_WHERE} "
        f"UNION ALL SELECT queue, state, run_at "
        f"FROM runner_job INDEXED BY runner_job_lease WHERE state = {EXECUTING_SQL}) "
        f"GROUP BY queue ORDER BY queue", (at,))
    return [QueueDepth(q, int(w or 0), int(r or 0), None if o is None else max(0.0, at - o))
            for q, w, r, o in rows]


def list_workers(db: Database, *, include_stopped: bool = False) -> list[WorkerRow]:
    """Worker processes, most recent heartbeat first."""
    where = "" if include_stopped else f" WHERE state = {sql_is(WorkerState.RUNNING)}"
    rows = db.query(f"SELECT {', '.join(WorkerRow.__dataclass_fields__)} FROM runner_worker"
                    f"{where} ORDER BY heartbeat_at DESC")
    return [WorkerRow(*row) for row in rows]


def stored_result(db: Database, job_id: str) -> bytes | None:
    """The result stored for a job (peeked, never consumed), or None."""
    rows = db.query("SELECT value FROM runner_kv WHERE key = ?", (job_id,))
    return rows[0][0] if rows and rows[0][0] is not None else None


def job_payload(db: Database, job_id: str) -> bytes | None:
    """The serialized task of a job in any state, or None."""
    rows = db.query("SELECT data FROM runner_job WHERE id = ?", (job_id,))
    return bytes(rows[0][0]) if rows and rows[0][0] is not None else None


def waiting_size(db: Database, *, now: float, due: bool) -> int:
    """Waiting jobs due by ``now`` (``due``) or due later (huey's queue and schedule sizes)."""
    compare = "<=" if due else ">"
    return db.query(
        f"SELECT (SELECT count(*) FROM runner_job INDEXED BY runner_job_claim "
        f"WHERE {CLAIMABLE_WHERE} AND run_at {compare} ?1) + (SELECT count(*) FROM "
        f"runner_job INDEXED BY runner_job_parked WHERE {PARKED_WHERE} AND run_at {compare} ?1)",
        (now,))[0][0]


def waiting_payloads(db: Database, *, now: float, due: bool, limit: int | None) -> list[bytes]:
    """Payloads of waiting jobs due by ``now`` in claim order, or due later by time."""
    if due:
        rows = db.query(  # parked jobs too: no one index holds them all
            f"SELECT data FROM runner_job WHERE "
            f"{WAITING_WHERE} AND run_at <= ? ORDER BY priority DESC, run_at LIMIT ?",
            (now, limit or -1))
    else:
        rows = db.query(
            f"SELECT data FROM runner_job WHERE {WAITING_WHERE} AND run_at > ? "
            "ORDER BY run_at LIMIT ?", (now, limit or -1))
    return [r[0] for r in rows]
