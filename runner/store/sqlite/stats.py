"""Aggregate reads for the dashboard, metrics and health: counts, buckets, backlogs, failures.

Each function runs a few short indexed queries through :meth:`Database.query`
(which fetches every row and closes its cursor), so no snapshot outlives the
call. :mod:`runner.readmodel` turns the rows into what its callers show.
"""

from __future__ import annotations

from runner.store.rows import FailureRow  # noqa: F401 - re-exported
from runner.store.sqlite.backlog import OLDEST_WAITING, QUEUE_PARKED
from runner.store.sqlite.conditions import CLAIMABLE_WHERE, NOT_WAITING, PARKED_WHERE
from runner.store.sqlite.db import Database
from runner.store.sqlite.integrity import index_hint
from runner.store.sqlite.models import JOB_COLUMNS, SCHEDULE_ACTIVE, JobRow
from runner.store.sqlite.queries import JobFilter, job_where, state_counts, state_is
from runner.store.states import (
    COMPLETED_SQL,
    DEAD_SQL,
    EXECUTING_SQL,
    FAILED_SQL,
    FUTURE,
    LIVE,
    LIVE_SQL,
    RETRYING_SQL,
    JobState,
    sql_in,
)
from runner.store.views import FAILURE_CAP

# -- counts and rates ----------------------------------------------------------------


def count_in_state(db: Database, state: JobState) -> int:
    """Jobs in one state: a covering range of the index that holds that state (available
    ones: the waiting count less the scheduled and retrying ones)."""
    if state == JobState.AVAILABLE:
        return state_counts(db)[state.value]
    index = "future" if state in FUTURE else "state_created"
    return db.query(f"SELECT count(*) FROM runner_job INDEXED BY runner_job_{index} "
                    f"WHERE {state_is(state.value)}", (state.value,))[0][0]


def completed_per_minute(db: Database, start: float) -> list[tuple[int, int]]:
    """(minute index from ``start``, completions) for jobs finished since ``start``."""
    return db.query(
        "SELECT CAST((finished_at - ?) / 60 AS INTEGER), count(*) FROM runner_job "
        f"INDEXED BY runner_job_finished WHERE finished_at >= ? AND state = {COMPLETED_SQL} "
        "GROUP BY 1", (start, start))


def failed_per_minute(db: Database, start: float) -> list[tuple[int, int]]:
    """(minute index from ``start``, failed attempts) for attempts failed since ``start``."""
    return db.query(
        "SELECT CAST((failed_at - ?) / 60 AS INTEGER), count(*) FROM runner_job_error "
        "WHERE failed_at >= ? GROUP BY 1", (start, start))


def finished_per_second(db: Database, since: float, until: float | None = None
                        ) -> tuple[dict[int, int], dict[int, int]]:
    """Completions and failed attempts per whole second in ``[since, until)``.

    The incremental form of the per-minute buckets: a caller that keeps history
    re-reads only the last few seconds at each refresh, so the cost follows the
    refresh interval, not the job rate times an hour.
    """
    end = float("inf") if until is None else until
    completed = dict(db.query(
        "SELECT CAST(finished_at AS INTEGER), count(*) FROM runner_job "
        "INDEXED BY runner_job_finished WHERE finished_at >= ? AND finished_at < ? "
        f"AND state = {COMPLETED_SQL} GROUP BY 1", (since, end)))
    failed = dict(db.query(
        "SELECT CAST(failed_at AS INTEGER), count(*) FROM runner_job_error "
        "WHERE failed_at >= ? AND failed_at < ? GROUP BY 1", (since, end)))
    return completed, failed


# -- queues and running jobs ---------------------------------------------------------


def queue_oldest(db: Database, now: float) -> list[tuple[str, float | None]]:
    """Each queue with waiting jobs and the ``run_at`` of its oldest due one.

    A loose scan of the ``(queue, priority, run_at)`` partial index: a few index
    seeks per queue (one per level of priority), whatever the backlog.
    """
    found: list[tuple[str, float | None]] = []
    after = ""
    while True:
        (after,) = db.query(
            f"SELECT min(q) FROM (SELECT (SELECT min(queue) FROM runner_job INDEXED BY "
            f"runner_job_queue_claim WHERE {CLAIMABLE_WHERE} AND queue > ?1) AS q "
            f"UNION ALL SELECT (SELECT min(queue) FROM runner_job INDEXED BY "
            f"runner_job_parked_queue WHERE {PARKED_WHERE} AND queue > ?1))", (after,))[0]
        if after is None:
            return found
        first = db.query(OLDEST_WAITING, (after,))[0][0]
        found.append((after, first if first is not None and first <= now else None))


def waiting_in_queue(db: Database, queue: str) -> int:
    """Waiting jobs of one queue, read through its partial index."""
    return db.query(f"SELECT (SELECT count(*) FROM runner_job INDEXED BY "
                    f"runner_job_queue_claim WHERE queue = ?1 AND {CLAIMABLE_WHERE}) "
                    f"+ (SELECT count(*) FROM {QUEUE_PARKED})", (queue,))[0][0]


def running_per_queue(db: Database) -> dict[str, int]:
    """Running jobs per queue."""
    return dict(db.query("SELECT queue, count(*) FROM runner_job "
                         f"WHERE state = {EXECUTING_SQL} GROUP BY queue"))


def running_jobs(db: Database) -> list[tuple[str | None, str, str, float | None]]:
    """(lease owner, id, task, started_at) of every running job, oldest start first."""
    return db.query("SELECT lease_owner, id, task, started_at FROM runner_job "
                    f"WHERE state = {EXECUTING_SQL} ORDER BY started_at")


#: Waiting, running and dead: the states the Queues view counts.
UNFINISHED_SQL = sql_in((*LIVE, JobState.DEAD))
#: (queue, state, jobs) of waiting jobs, from the claim and parked indexes alone.
WAITING_BY_QUEUE_SQL = (
    f"SELECT queue, state, count(*) FROM runner_job INDEXED BY runner_job_queue_claim "
    f"WHERE {CLAIMABLE_WHERE} GROUP BY queue, state UNION ALL "
    f"SELECT queue, state, count(*) FROM runner_job INDEXED BY runner_job_parked_queue "
    f"WHERE {PARKED_WHERE} GROUP BY queue, state")


def unfinished_by_queue(db: Database) -> list[tuple[str, str, int]]:
    """(queue, state, jobs) of waiting, running and dead jobs.

    Waiting jobs are counted from their index alone, running and dead ones
    from a range of the state index: completed and cancelled history is not
    read, so the cost follows the backlog.
    """
    return db.query(
        f"{WAITING_BY_QUEUE_SQL} UNION ALL "
        f"SELECT queue, state, count(*) FROM runner_job INDEXED BY runner_job_state_created "
        f"WHERE state IN {UNFINISHED_SQL} AND {NOT_WAITING} GROUP BY queue, state")


def counts_by_queue_and_state(db: Database) -> list[tuple[str, str, int]]:
    """(queue, state, jobs) for every pair that has jobs."""
    return db.query("SELECT queue, state, count(*) FROM runner_job GROUP BY queue, state")


# -- job pages -----------------------------------------------------------------------


def job_page(db: Database, filters: JobFilter | None = None, *, limit: int = 100,
             offset: int = 0) -> list[JobRow]:
    """One page of jobs, newest first, always read through an index.

    With a state or task the ``(state|task, created_at)`` indexes give the
    order; otherwise insertion order (rowid, the same as creation order) does,
    so a million jobs never get sorted.
    """
    chosen = filters or JobFilter()
    where, params = job_where(chosen)
    # A task alone, or available jobs, read newest rows first (no index orders them).
    if chosen.state in (None, "waiting", "failed", JobState.AVAILABLE.value):
        order = "rowid DESC"
    else:
        order = "created_at DESC, rowid DESC"
    rows = db.query(f"SELECT {JOB_COLUMNS} FROM runner_job{where} ORDER BY {order} "
                    "LIMIT ? OFFSET ?", [*params, limit, offset])
    return [JobRow(*row) for row in rows]


def count_jobs_capped(db: Database, filters: JobFilter | None = None, *,
                      cap: int = 10_000) -> tuple[int, bool]:
    """How many jobs match, counting no further than ``cap``; returns (count, capped)."""
    where, params = job_where(filters or JobFilter())
    count = db.query(f"SELECT count(*) FROM (SELECT 1 FROM runner_job{where} LIMIT ?)",
                     [*params, cap + 1])[0][0]
    return min(count, cap), count > cap


# -- failures ------------------------------------------------------------------------


def failure_rows(db: Database, *, limit: int = 200, cap: int = FAILURE_CAP
                 ) -> list[FailureRow]:
    """Retrying and dead jobs grouped by error type and message, biggest group first.

    Groups the newest ``cap`` failed jobs: the newest of each state are the tail
    of its index by ``created_at`` (dead jobs in ``runner_job_state_created``,
    retrying ones in ``runner_job_future``), so at most ``cap`` jobs are read
    however many history holds.
    """
    newest = ("SELECT * FROM (SELECT rowid AS r, created_at FROM runner_job{hint} "
              "WHERE {where} ORDER BY created_at DESC, rowid DESC LIMIT ?)")
    dead = newest.format(hint=index_hint(db, "runner_job_state_created"),
                         where=state_is(JobState.DEAD.value))
    retrying = newest.format(hint=index_hint(db, "runner_job_future"),
                             where=state_is(JobState.RETRYING.value))
    return db.query(
        f"SELECT error_type, error_message, count(*), sum(state = {DEAD_SQL}), "
        f"sum(state = {RETRYING_SQL}), group_concat(DISTINCT task), max(last_failed_at) "
        f"FROM runner_job WHERE rowid IN (SELECT r FROM ({dead} UNION ALL {retrying}) "
        "ORDER BY created_at DESC, r DESC LIMIT ?) "
        "GROUP BY error_type, error_message ORDER BY count(*) DESC, max(last_failed_at) DESC "
        "LIMIT ?", (JobState.DEAD.value, cap, JobState.RETRYING.value, cap, cap, limit))


def failure_messages(db: Database, error_type: str | None, *, prefix: str = ""
                     ) -> list[str | None]:
    """The distinct messages of the retrying and dead jobs with ``error_type`` that start
    with ``prefix``: one range of ``runner_job_failure``, read in its order (no sort)."""
    hint = index_hint(db, "runner_job_failure")
    where = f"WHERE error_type IS ? AND state IN {FAILED_SQL}"
    params: list[object] = [error_type]
    if prefix:
        # Text compares byte by byte: every message with the prefix sorts in this range.
        where += " AND error_message >= ? AND error_message < ?"
        params += [prefix, prefix + "\U0010ffff"]
    rows = db.query(f"SELECT DISTINCT error_message FROM runner_job{hint} {where}", params)
    return [r[0] for r in rows if r[0] is None or r[0].startswith(prefix)]


def failure_signature(db: Database, *, cap: int = FAILURE_CAP) -> tuple[int, int]:
    """Changes whenever a failure group may have: (failed jobs, newest failed attempt id).

    Failed jobs are counted no further than ``cap + 1`` (more says there are more).
    """
    count = db.query(
        f"SELECT count(*) FROM (SELECT 1 FROM runner_job{index_hint(db, 'runner_job_failure')} "
        f"WHERE state IN {FAILED_SQL} LIMIT ?)", (cap + 1,))[0][0]
    newest = db.query("SELECT max(id) FROM runner_job_error")[0][0]
    return count, newest or 0


# -- metrics windows -----------------------------------------------------------------


def completions_since(db: Database, since: float
                      ) -> list[tuple[str, str, float | None, float]]:
    """(task, queue, started_at, finished_at) of jobs completed since ``since``."""
    return db.query(
        "SELECT task, queue, started_at, finished_at FROM runner_job INDEXED BY "
        f"runner_job_finished WHERE finished_at >= ? AND state = {COMPLETED_SQL}", (since,))


def failed_attempts_since(db: Database, since: float) -> list[tuple[str, str, float, int]]:
    """(task, queue, failed_at, retried) of attempts failed since ``since``.

    ``retried`` is 1 when another attempt followed (or may still follow).
    """
    return db.query(
        f"SELECT j.task, j.queue, e.failed_at, (e.attempt < j.attempt OR j.state IN {LIVE_SQL})"
        " FROM runner_job_error e JOIN runner_job j ON j.id = e.job_id "
        "WHERE e.failed_at >= ?", (since,))


def dead_by_task(db: Database, since: float) -> list[tuple[str, str, int | None, int]]:
    """(task, queue, died since ``since``, dead now) per task and queue with dead jobs."""
    return db.query(
        "SELECT task, queue, sum(finished_at >= ?), count(*) FROM runner_job "
        f"WHERE state = {DEAD_SQL} AND {NOT_WAITING} GROUP BY task, queue", (since,))


def active_schedule_fires(db: Database) -> list[tuple[str, float | None]]:
    """(name, next_fire_at) of every active schedule."""
    return db.query(f"SELECT name, next_fire_at FROM runner_schedule WHERE {SCHEDULE_ACTIVE}")
