"""Read side of a PostgreSQL jobs database: listings, counts, backlogs, failures, windows.

The same answers as :mod:`runner.store.queries` and :mod:`runner.store.stats`.
Insertion order is ``seq`` (SQLite's ``rowid``); sums over conditions are
``count(*) FILTER (...)``, so every count comes back as an integer.
"""

from __future__ import annotations

import time

from runner.errors import JobNotFound
from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.lookup import JOB_COLUMNS, SCHEDULE_ACTIVE, AmbiguousId, lookup_id
from runner.store.rows import AttemptError, FailureRow, JobFilter, JobRow, QueueDepth, WorkerRow
from runner.store.sqlite.queries import job_where
from runner.store.states import (
    ALL,
    COMPLETED_SQL,
    DEAD_SQL,
    EXECUTING_SQL,
    FAILED_SQL,
    FUTURE,
    LIVE_SQL,
    RETRYING_SQL,
    WAITING_SQL,
    JobState,
    WorkerState,
    sql_in,
    sql_is,
)


def where(filters: JobFilter | None) -> tuple[str, list[object]]:
    """The SQL condition of a job filter, in this dialect (``%s`` parameters)."""
    # The shared condition uses only standard SQL (LIKE ... ESCAPE '\\' included);
    # only the parameter marks differ.
    sql, params = job_where(filters or JobFilter())
    return sql.replace("?", "%s"), params


# -- jobs ------------------------------------------------------------------------------


def list_jobs(db: PgDatabase, filters: JobFilter | None = None, *, limit: int = 100,
              offset: int = 0) -> list[JobRow]:
    """Jobs matching ``filters``, newest first, one page at a time."""
    sql, params = where(filters)
    rows = db.query(f"SELECT {JOB_COLUMNS} FROM runner_job{sql} "
                    f"ORDER BY created_at DESC, id LIMIT %s OFFSET %s", [*params, limit, offset])
    return [JobRow(*row) for row in rows]


def job_page(db: PgDatabase, filters: JobFilter | None = None, *, limit: int = 100,
             offset: int = 0) -> list[JobRow]:
    """One page of jobs, newest first, read through an index (``seq`` or ``created_at``)."""
    chosen = filters or JobFilter()
    sql, params = where(chosen)
    if chosen.state in (None, "waiting", "failed") and not chosen.task:
        order = "seq DESC"
    else:
        order = "created_at DESC, id"
    rows = db.query(f"SELECT {JOB_COLUMNS} FROM runner_job{sql} ORDER BY {order} "
                    "LIMIT %s OFFSET %s", [*params, limit, offset])
    return [JobRow(*row) for row in rows]


def count_jobs(db: PgDatabase, filters: JobFilter | None = None) -> int:
    """How many jobs match ``filters``."""
    sql, params = where(filters)
    return db.query(f"SELECT count(*) FROM runner_job{sql}", params)[0][0]


def count_jobs_capped(db: PgDatabase, filters: JobFilter | None = None, *,
                      cap: int = 10_000) -> tuple[int, bool]:
    """How many jobs match, counting no further than ``cap``; returns (count, capped)."""
    sql, params = where(filters)
    count = db.query(f"SELECT count(*) FROM (SELECT 1 FROM runner_job{sql} LIMIT %s) capped",
                     [*params, cap + 1])[0][0]
    return min(count, cap), count > cap


def job_ids(db: PgDatabase, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
    """Ids of the jobs matching ``filters`` (for bulk actions)."""
    sql, params = where(filters)
    return [r[0] for r in db.query(f"SELECT id FROM runner_job{sql} LIMIT %s", [*params, limit])]


def get_job(db: PgDatabase, job_id: str) -> JobRow:
    """One job by id, or by a unique start or end of its id.

    Raises:
        JobNotFound: no job, or the prefix is ambiguous.
    """
    try:
        row = lookup_id(db, "runner_job", JOB_COLUMNS, job_id)
    except AmbiguousId:
        raise JobNotFound(f"job id '{job_id}' is ambiguous; give more of it") from None
    if row is None:
        raise JobNotFound(f"no job with id '{job_id}'")
    return JobRow(*row)


def job_errors(db: PgDatabase, job_id: str) -> list[AttemptError]:
    """Every failed attempt of a job, oldest first (the timeline)."""
    rows = db.query(
        "SELECT attempt, kind, error_type, message, traceback, worker, started_at, failed_at "
        "FROM runner_job_error WHERE job_id = %s ORDER BY id", (job_id,))
    return [AttemptError(*row) for row in rows]


def has_future_jobs(db: PgDatabase) -> bool:
    """True when some job waits for a later ``run_at``."""
    return bool(db.query(f"SELECT 1 FROM runner_job WHERE state IN {sql_in(FUTURE)} LIMIT 1"))


def job_state(db: PgDatabase, job_id: str) -> str | None:
    """A job's state, or None when there is no such job."""
    rows = db.query("SELECT state FROM runner_job WHERE id = %s", (job_id,))
    return rows[0][0] if rows else None


def stored_result(db: PgDatabase, job_id: str) -> bytes | None:
    """The result stored for a job (peeked, never consumed), or None."""
    rows = db.query("SELECT value FROM runner_kv WHERE key = %s", (job_id,))
    return bytes(rows[0][0]) if rows and rows[0][0] is not None else None


# -- counts ----------------------------------------------------------------------------


def counts_by_state(db: PgDatabase) -> dict[str, int]:
    """Number of jobs in each state (states with none are 0)."""
    counts = dict.fromkeys((s.value for s in ALL), 0)
    counts.update(dict(db.query("SELECT state, count(*) FROM runner_job GROUP BY state")))
    return counts


def count_in_state(db: PgDatabase, state: JobState) -> int:
    """Jobs in one state."""
    return db.query("SELECT count(*) FROM runner_job WHERE state = %s", (state.value,))[0][0]


def queue_depths(db: PgDatabase, now: float | None = None) -> list[QueueDepth]:
    """Waiting and running jobs per queue, with the age of the oldest due waiting job."""
    at = time.time() if now is None else now
    rows = db.query(
        f"SELECT queue, count(*) FILTER (WHERE state IN {WAITING_SQL}), "
        f"count(*) FILTER (WHERE state = {EXECUTING_SQL}), "
        f"min(run_at) FILTER (WHERE state IN {WAITING_SQL} AND run_at <= %s) "
        f"FROM runner_job WHERE state IN {LIVE_SQL} GROUP BY queue ORDER BY queue", (at,))
    return [QueueDepth(q, int(w), int(r), None if o is None else max(0.0, at - o))
            for q, w, r, o in rows]


def queue_oldest(db: PgDatabase, now: float) -> list[tuple[str, float | None]]:
    """Each queue with waiting jobs and the ``run_at`` of its oldest due one."""
    rows = db.query(f"SELECT queue, min(run_at) FROM runner_job WHERE state IN {WAITING_SQL} "
                    f"GROUP BY queue ORDER BY queue")
    return [(q, first if first is not None and first <= now else None) for q, first in rows]


def waiting_in_queue(db: PgDatabase, queue: str) -> int:
    """Waiting jobs of one queue."""
    return db.query(f"SELECT count(*) FROM runner_job WHERE queue = %s AND state IN "
                    f"{WAITING_SQL}", (queue,))[0][0]


def running_per_queue(db: PgDatabase) -> dict[str, int]:
    """Running jobs per queue."""
    return dict(db.query(f"SELECT queue, count(*) FROM runner_job WHERE state = {EXECUTING_SQL} "
                         "GROUP BY queue"))


def running_jobs(db: PgDatabase) -> list[tuple[str | None, str, str, float | None]]:
    """(lease owner, id, task, started_at) of every running job, oldest start first."""
    return db.query("SELECT lease_owner, id, task, started_at FROM runner_job "
                    f"WHERE state = {EXECUTING_SQL} ORDER BY started_at")


def counts_by_queue_and_state(db: PgDatabase) -> list[tuple[str, str, int]]:
    """(queue, state, jobs) for every pair that has jobs."""
    return db.query("SELECT queue, state, count(*) FROM runner_job GROUP BY queue, state")


def list_workers(db: PgDatabase, *, include_stopped: bool = False) -> list[WorkerRow]:
    """Worker processes, most recent heartbeat first."""
    cond = "" if include_stopped else f" WHERE state = {sql_is(WorkerState.RUNNING)}"
    rows = db.query(f"SELECT {', '.join(WorkerRow.__dataclass_fields__)} FROM runner_worker"
                    f"{cond} ORDER BY heartbeat_at DESC")
    return [WorkerRow(*row) for row in rows]


# -- rates and windows -------------------------------------------------------------------


def completed_per_minute(db: PgDatabase, start: float) -> list[tuple[int, int]]:
    """(minute index from ``start``, completions) for jobs finished since ``start``."""
    return db.query(
        "SELECT trunc((finished_at - %s) / 60)::bigint AS m, count(*) FROM runner_job "
        f"WHERE finished_at >= %s AND state = {COMPLETED_SQL} GROUP BY m", (start, start))


def failed_per_minute(db: PgDatabase, start: float) -> list[tuple[int, int]]:
    """(minute index from ``start``, failed attempts) for attempts failed since ``start``."""
    return db.query(
        "SELECT trunc((failed_at - %s) / 60)::bigint AS m, count(*) FROM runner_job_error "
        "WHERE failed_at >= %s GROUP BY m", (start, start))


def finished_per_second(db: PgDatabase, since: float, until: float | None = None
                        ) -> tuple[dict[int, int], dict[int, int]]:
    """Completions and failed attempts per whole second in ``[since, until)``."""
    end = float("inf") if until is None else until
    completed = dict(db.query(
        "SELECT trunc(finished_at)::bigint AS s, count(*) FROM runner_job "
        f"WHERE finished_at >= %s AND finished_at < %s AND state = {COMPLETED_SQL} "
        "GROUP BY s", (since, end)))
    failed = dict(db.query(
        "SELECT trunc(failed_at)::bigint AS s, count(*) FROM runner_job_error "
        "WHERE failed_at >= %s AND failed_at < %s GROUP BY s", (since, end)))
    return completed, failed


def completions_since(db: PgDatabase, since: float) -> list[tuple[str, str, float | None, float]]:
    """(task, queue, started_at, finished_at) of jobs completed since ``since``."""
    return db.query("SELECT task, queue, started_at, finished_at FROM runner_job "
                    f"WHERE finished_at >= %s AND state = {COMPLETED_SQL}", (since,))


def failed_attempts_since(db: PgDatabase, since: float) -> list[tuple[str, str, float, int]]:
    """(task, queue, failed_at, retried) of attempts failed since ``since``."""
    return db.query(
        f"SELECT j.task, j.queue, e.failed_at, "
        f"(e.attempt < j.attempt OR j.state IN {LIVE_SQL})::int "
        "FROM runner_job_error e JOIN runner_job j ON j.id = e.job_id "
        "WHERE e.failed_at >= %s", (since,))


def dead_by_task(db: PgDatabase, since: float) -> list[tuple[str, str, int | None, int]]:
    """(task, queue, died since ``since``, dead now) per task and queue with dead jobs."""
    return db.query(
        "SELECT task, queue, count(*) FILTER (WHERE finished_at >= %s), count(*) "
        f"FROM runner_job WHERE state = {DEAD_SQL} GROUP BY task, queue", (since,))


def active_schedule_fires(db: PgDatabase) -> list[tuple[str, float | None]]:
    """(name, next_fire_at) of every active schedule."""
    return db.query(f"SELECT name, next_fire_at FROM runner_schedule WHERE {SCHEDULE_ACTIVE}")


# -- failures ----------------------------------------------------------------------------


def failure_rows(db: PgDatabase, *, limit: int = 200) -> list[FailureRow]:
    """Retrying and dead jobs grouped by error type and message, biggest group first."""
    return db.query(
        f"SELECT error_type, error_message, count(*), count(*) FILTER (WHERE state = {DEAD_SQL}), "
        f"count(*) FILTER (WHERE state = {RETRYING_SQL}), string_agg(DISTINCT task, ','), "
        f"max(last_failed_at) FROM runner_job WHERE state IN {FAILED_SQL} "
        "GROUP BY error_type, error_message ORDER BY count(*) DESC, max(last_failed_at) DESC "
        "LIMIT %s", (limit,))


def failure_group_ids(db: PgDatabase, error_type: str | None, message: str | None, *,
                      limit: int = 100_000) -> list[str]:
    """Ids of the retrying and dead jobs of one failure group (for bulk actions)."""
    rows = db.query(
        f"SELECT id FROM runner_job WHERE state IN {FAILED_SQL} "
        "AND error_type IS NOT DISTINCT FROM %s AND error_message IS NOT DISTINCT FROM %s "
        "LIMIT %s", (error_type, message, limit))
    return [r[0] for r in rows]


def failure_signature(db: PgDatabase) -> tuple[int, int]:
    """Changes whenever a failure group may have: (failed jobs, newest failed attempt id)."""
    count = db.query(f"SELECT count(*) FROM runner_job WHERE state IN {FAILED_SQL}")[0][0]
    newest = db.query("SELECT max(id) FROM runner_job_error")[0][0]
    return count, newest or 0
