"""Reads behind the terminal dashboard (``python -m tui``), one function per panel.

Every function takes a (normally read-only) :class:`Database`, runs a few
short indexed queries through :meth:`Database.query` (which fetches every row
and closes its cursor) and returns plain dataclasses, so no snapshot outlives
the call. Tables that a given database may not have yet (schedules, events,
logs) read as empty instead of failing: the dashboard works on any version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from runner.store.db import Database
from runner.store.models import JOB_COLUMNS, WAITING_SQL, AttemptError, JobRow, LogRow
from runner.store.queries import JobFilter, WorkerRow, list_workers

#: States the Jobs screen cycles through (``None`` is every job).
JOB_STATES: tuple[str | None, ...] = (None, "available", "scheduled", "executing", "retrying",
                                      "dead", "completed", "cancelled")


def has_table(db: Database, name: str) -> bool:
    """True when the database holds table ``name`` (newer features add tables)."""
    return bool(db.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)))


def index_hint(db: Database, name: str) -> str:
    """``INDEXED BY name`` when the index exists, else nothing.

    A database written by an older worker may lack an index the dashboard
    prefers; the query then still runs, only slower, until a newer worker
    starts and creates it.
    """
    found = db.query("SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (name,))
    return f" INDEXED BY {name}" if found else ""


# -- summary strip -----------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The numbers shown on every screen."""

    at: float
    waiting: int
    """Jobs due now and not started (``available``)."""
    running: int
    scheduled: int
    retrying: int
    dead: int
    completed_per_minute: float
    """Completions in the last full minute."""
    error_rate: float | None
    """Failed attempts / (completions + failed attempts) over the last hour; None if idle."""
    oldest_waiting_age: float | None
    """Seconds the oldest due waiting job has waited (the latency)."""


def summary(db: Database, now: float | None = None,
            rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None) -> Summary:
    """Counts of the live states and dead jobs, rates and the latency.

    Args:
        rates: the per-minute buckets of :func:`throughput` when the caller has
            them already (saves reading the last hour twice).
    """
    at = time.time() if now is None else now
    # One indexed count per state: covering ranges of (state, created_at).
    counts = {state: db.query("SELECT count(*) FROM runner_job WHERE state = ?", (state,))[0][0]
              for state in ("available", "scheduled", "retrying", "executing", "dead")}
    dead = counts["dead"]
    oldest = min((o for _, o in _queue_oldest(db, at)), default=None)
    completed, failed = rates if rates is not None else throughput(db, at, minutes=60)
    done, errors = sum(completed), sum(failed)
    return Summary(
        at=at, waiting=counts.get("available", 0), running=counts.get("executing", 0),
        scheduled=counts.get("scheduled", 0), retrying=counts.get("retrying", 0), dead=dead,
        completed_per_minute=float(completed[-2] if len(completed) > 1 else sum(completed)),
        error_rate=errors / (done + errors) if done + errors else None,
        oldest_waiting_age=None if oldest is None else max(0.0, at - oldest))


def throughput(db: Database, now: float | None = None, *,
               minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Completions and failed attempts per minute, oldest minute first.

    The last bucket is the current (partial) minute. Minutes are aligned to the
    clock so that buckets read at different times agree.
    """
    at = time.time() if now is None else now
    end = (int(at) // 60 + 1) * 60
    start = end - minutes * 60
    completed = [0] * minutes
    failed = [0] * minutes
    for index, count in db.query(
            "SELECT CAST((finished_at - ?) / 60 AS INTEGER), count(*) FROM runner_job "
            "INDEXED BY runner_job_finished WHERE finished_at >= ? AND state = 'completed' "
            "GROUP BY 1", (start, start)):
        if 0 <= index < minutes:
            completed[index] += count
    for index, count in db.query(
            "SELECT CAST((failed_at - ?) / 60 AS INTEGER), count(*) FROM runner_job_error "
            "WHERE failed_at >= ? GROUP BY 1", (start, start)):
        if 0 <= index < minutes:
            failed[index] += count
    return tuple(completed), tuple(failed)


def finished_per_second(db: Database, since: float, until: float | None = None
                        ) -> tuple[dict[int, int], dict[int, int]]:
    """Completions and failed attempts per whole second in ``[since, until)``.

    The incremental form of :func:`throughput`: a caller that keeps history
    re-reads only the last few seconds at each refresh, so the cost follows the
    refresh interval, not the job rate times an hour.
    """
    end = float("inf") if until is None else until
    completed = dict(db.query(
        "SELECT CAST(finished_at AS INTEGER), count(*) FROM runner_job "
        "INDEXED BY runner_job_finished WHERE finished_at >= ? AND finished_at < ? "
        "AND state = 'completed' GROUP BY 1", (since, end)))
    failed = dict(db.query(
        "SELECT CAST(failed_at AS INTEGER), count(*) FROM runner_job_error "
        "WHERE failed_at >= ? AND failed_at < ? GROUP BY 1", (since, end)))
    return completed, failed


# -- overview ----------------------------------------------------------------


def _queue_oldest(db: Database, now: float) -> list[tuple[str, float | None]]:
    """Each queue with waiting jobs and the ``run_at`` of its oldest due one.

    A loose scan of the ``(queue, run_at)`` partial index: two index seeks per
    queue, whatever the backlog.
    """
    found: list[tuple[str, float | None]] = []
    after = ""
    while True:
        rows = db.query(f"SELECT queue FROM runner_job INDEXED BY runner_job_queue_waiting "
                        f"WHERE state IN {WAITING_SQL} AND queue > ? ORDER BY queue LIMIT 1",
                        (after,))
        if not rows:
            return found
        after = rows[0][0]
        first = db.query(f"SELECT min(run_at) FROM runner_job INDEXED BY "
                         f"runner_job_queue_waiting WHERE queue = ? AND state IN {WAITING_SQL}",
                         (after,))[0][0]
        found.append((after, first if first is not None and first <= now else None))


@dataclass(frozen=True)
class QueueLoad:
    """One queue's backlog on the Overview."""

    queue: str
    waiting: int
    running: int
    oldest_waiting_age: float | None


def queue_loads(db: Database, now: float | None = None) -> list[QueueLoad]:
    """Waiting and running jobs per queue and the age of the oldest due one.

    Reads each queue's waiting jobs through its partial index, so the cost is
    the backlog, never the history.
    """
    at = time.time() if now is None else now
    running = dict(db.query("SELECT queue, count(*) FROM runner_job "
                            "WHERE state = 'executing' GROUP BY queue"))
    loads = {}
    for queue, oldest in _queue_oldest(db, at):
        waiting = db.query(f"SELECT count(*) FROM runner_job INDEXED BY runner_job_queue_waiting "
                           f"WHERE queue = ? AND state IN {WAITING_SQL}", (queue,))[0][0]
        loads[queue] = QueueLoad(queue, waiting, running.get(queue, 0),
                                 None if oldest is None else max(0.0, at - oldest))
    for queue, count in running.items():
        loads.setdefault(queue, QueueLoad(queue, 0, count, None))
    return [loads[q] for q in sorted(loads)]


@dataclass(frozen=True)
class RunningJob:
    """A job a worker is executing now."""

    id: str
    task: str
    started_at: float | None


@dataclass(frozen=True)
class WorkerLoad:
    """A worker process and what it is running."""

    worker: WorkerRow
    jobs: list[RunningJob]


def worker_loads(db: Database, *, include_stopped: bool = False) -> list[WorkerLoad]:
    """Registered workers with the jobs each holds a lease on."""
    by_owner: dict[str, list[RunningJob]] = {}
    for owner, job_id, task, started in db.query(
            "SELECT lease_owner, id, task, started_at FROM runner_job "
            "WHERE state = 'executing' ORDER BY started_at"):
        by_owner.setdefault(owner or "", []).append(RunningJob(job_id, task, started))
    return [WorkerLoad(w, by_owner.get(w.id, []))
            for w in list_workers(db, include_stopped=include_stopped)]


# -- jobs --------------------------------------------------------------------


def job_page(db: Database, filters: JobFilter | None = None, *, limit: int = 100,
             offset: int = 0) -> list[JobRow]:
    """One page of jobs, newest first, always read through an index.

    With a state or task the ``(state|task, created_at)`` indexes give the
    order; otherwise insertion order (rowid, the same as creation order) does,
    so a million jobs never get sorted.
    """
    chosen = filters or JobFilter()
    where, params = chosen.where()
    if chosen.state in (None, "waiting", "failed") and not chosen.task:
        order = "rowid DESC"
    else:
        order = "created_at DESC, id"
    rows = db.query(f"SELECT {JOB_COLUMNS} FROM runner_job{where} ORDER BY {order} "
                    "LIMIT ? OFFSET ?", [*params, limit, offset])
    return [JobRow(*row) for row in rows]


def count_jobs_capped(db: Database, filters: JobFilter | None = None, *,
                      cap: int = 10_000) -> tuple[int, bool]:
    """How many jobs match, counting no further than ``cap``; returns (count, capped)."""
    where, params = (filters or JobFilter()).where()
    count = db.query(f"SELECT count(*) FROM (SELECT 1 FROM runner_job{where} LIMIT ?)",
                     [*params, cap + 1])[0][0]
    return min(count, cap), count > cap


@dataclass(frozen=True)
class JobDetail:
    """Everything the Job detail screen shows."""

    job: JobRow
    errors: list[AttemptError]
    logs: list[LogRow]


#: A stored log record (``runner_log``) as the dashboard shows it.
LogLine = LogRow


def job_detail(db: Database, job_id: str, *, log_limit: int = 500) -> JobDetail:
    """A job with its failed attempts and its newest log lines.

    Raises:
        JobNotFound: no such job.
    """
    from runner.store.queries import get_job, job_errors

    job = get_job(db, job_id)
    logs = tail_logs(db, job_id=job.id, limit=log_limit)
    return JobDetail(job, job_errors(db, job.id), logs)


# -- logs --------------------------------------------------------------------


def tail_logs(db: Database, *, after_id: int = 0, job_id: str | None = None,
              min_level: int = 0, text: str | None = None, limit: int = 500) -> list[LogRow]:
    """Stored log records after ``after_id``, oldest first; with 0, the newest ``limit``.

    Empty when the database has no log table.
    """
    if not has_table(db, "runner_log"):
        return []
    clauses, params = ["id > ?"], [after_id]
    if job_id:
        clauses.append("job_id = ?")
        params.append(job_id)
    if min_level:
        clauses.append("level >= ?")
        params.append(min_level)
    if text:
        clauses.append("(message LIKE ? OR logger LIKE ? OR task LIKE ?)")
        params += [f"%{text}%"] * 3
    order = "ASC" if after_id else "DESC"
    rows = db.query(f"SELECT {', '.join(LogRow.__dataclass_fields__)} FROM runner_log "
                    f"WHERE {' AND '.join(clauses)} ORDER BY id {order} LIMIT ?",
                    [*params, limit])
    if not after_id:
        rows.reverse()
    return [LogRow(*row) for row in rows]
