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
from runner.store.factory import store_for
from runner.store.integrity import index_hint  # noqa: F401 - part of this module's reads
from runner.store.models import AttemptError, JobRow, LogRow
from runner.store.queries import JobFilter, WorkerRow
from runner.store.states import JobState

#: States the Jobs screen cycles through (``None`` is every job).
JOB_STATES: tuple[str | None, ...] = (None, *(s.value for s in (
    JobState.AVAILABLE, JobState.SCHEDULED, JobState.EXECUTING, JobState.RETRYING,
    JobState.DEAD, JobState.COMPLETED, JobState.CANCELLED)))


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
    counts = {state: store_for(db).count_in_state(state)
              for state in (JobState.AVAILABLE, JobState.SCHEDULED, JobState.RETRYING,
                            JobState.EXECUTING, JobState.DEAD)}
    dead = counts[JobState.DEAD]
    oldest = min((o for _, o in store_for(db).queue_oldest(at)), default=None)
    completed, failed = rates if rates is not None else throughput(db, at, minutes=60)
    done, errors = sum(completed), sum(failed)
    return Summary(
        at=at, waiting=counts[JobState.AVAILABLE], running=counts[JobState.EXECUTING],
        scheduled=counts[JobState.SCHEDULED], retrying=counts[JobState.RETRYING], dead=dead,
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
    for index, count in store_for(db).completed_per_minute(start):
        if 0 <= index < minutes:
            completed[index] += count
    for index, count in store_for(db).failed_per_minute(start):
        if 0 <= index < minutes:
            failed[index] += count
    return tuple(completed), tuple(failed)


# -- overview ----------------------------------------------------------------


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
    running = store_for(db).running_per_queue()
    loads = {}
    for queue, oldest in store_for(db).queue_oldest(at):
        waiting = store_for(db).waiting_in_queue(queue)
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
    for owner, job_id, task, started in store_for(db).running_jobs():
        by_owner.setdefault(owner or "", []).append(RunningJob(job_id, task, started))
    return [WorkerLoad(w, by_owner.get(w.id, []))
            for w in store_for(db).list_workers(include_stopped=include_stopped)]


# -- jobs --------------------------------------------------------------------


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
    store = store_for(db)
    job = store.get_job(job_id)
    logs = store.tail_logs(job_id=job.id, limit=log_limit)
    return JobDetail(job, store.job_errors(job.id), logs)


# -- logs --------------------------------------------------------------------


def has_table(db: Database, name: str) -> bool:
    """True when the database holds table ``name`` (newer features add tables)."""
    return store_for(db).has_table(name)


def finished_per_second(db: Database, since: float, until: float | None = None
                        ) -> tuple[dict[int, int], dict[int, int]]:
    """Completions and failed attempts per whole second in ``[since, until)``."""
    return store_for(db).finished_per_second(since, until)


def job_page(db: Database, filters: JobFilter | None = None, *, limit: int = 100,
             offset: int = 0) -> list[JobRow]:
    """One page of jobs, newest first, always read through an index."""
    return store_for(db).job_page(filters, limit=limit, offset=offset)


def count_jobs_capped(db: Database, filters: JobFilter | None = None, *,
                      cap: int = 10_000) -> tuple[int, bool]:
    """How many jobs match, counting no further than ``cap``; returns (count, capped)."""
    return store_for(db).count_jobs_capped(filters, cap=cap)


def tail_logs(db: Database, *, after_id: int = 0, job_id: str | None = None,
              min_level: int = 0, text: str | None = None, limit: int = 500) -> list[LogRow]:
    """Stored log records after ``after_id``, oldest first; with 0, the newest ``limit``."""
    return store_for(db).tail_logs(after_id=after_id, job_id=job_id, min_level=min_level,
                                   text=text, limit=limit)

