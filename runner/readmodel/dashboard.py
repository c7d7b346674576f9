"""Reads behind the terminal dashboard (``python -m tui``), one function per panel.

Every function takes a (normally read-only) :class:`~runner.store.backend.Store`
and returns plain dataclasses (:mod:`runner.store.views`), so no snapshot
outlives the call. Tables that a given database may not have yet (schedules,
events, logs) read as empty instead of failing: the dashboard works on any
version. The statements live in the store's backend; this module is what the
dashboard imports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from runner.errors import EventNotFound, JobNotFound
from runner.store.backend import Store
from runner.store.owners import worker_gone
from runner.store.rows import AttemptError, JobFilter, JobRow, LogRow
from runner.store.states import JobState
from runner.store.views import (
    JOB_SORTS,
    JOB_STATES,
    RECENT_SAMPLE,
    SORT_WINDOW,
    JobPage,
    LogLine,
    PageKey,
    RunningJob,
    RunTimes,
    Summary,
    WorkerLoad,
    percentile,
)

if TYPE_CHECKING:
    from runner.readmodel.results import ResultView


@dataclass(frozen=True)
class JobDetail:
    """Everything the Job detail screen shows."""

    job: JobRow
    errors: list[AttemptError]
    logs: list[LogRow]
    result: ResultView | None = None
    """The stored return value (peeked, never consumed); None when none is stored."""
    stalled: bool = False
    """Executing under a worker that is gone: nothing runs it until a worker requeues it."""


def job_detail(store: Store, job_id: str, *, log_limit: int = 500,
               stale_after: float | None = None, node: str | None = None,
               now: float | None = None) -> JobDetail:
    """A job with its failed attempts and its newest log lines; with ``stale_after``, an
    executing job whose worker is not alive (:func:`live_worker_ids`) reads as stalled.

    Raises:
        JobNotFound: no such job.
    """
    from runner.readmodel.results import job_result
    job = store.get_job(job_id)
    logs = store.tail_logs(job_id=job.id, limit=log_limit)
    result = job_result(store, job.id) if job.state == JobState.COMPLETED else None
    stalled = (stale_after is not None and job.state == JobState.EXECUTING
               and is_stalled(store, job, stale_after, node, now))
    return JobDetail(job, store.job_errors(job.id), logs, result, stalled)


def is_stalled(store: Store, job: JobRow, stale_after: float, node: str | None = None,
               now: float | None = None) -> bool:
    """Whether an executing job's worker is not alive (the Jobs list's rule)."""
    at = time.time() if now is None else now
    return job.lease_owner not in live_worker_ids(store, at, stale_after, node)


def resolve_job_id(store: Store, text: str) -> str:
    """The full id of the job ``text`` names (a whole id, or a unique start or end of one).

    Text that names no job is returned unchanged: log lines can outlive their job.
    """
    try:
        return store.get_job(text).id
    except JobNotFound:
        return text


def resolve_filters(store: Store, filters: JobFilter) -> JobFilter:
    """``filters`` with the ids the dashboard shows made whole: an event's short id (a
    unique start or end of its id), and a worker as ``host/pid`` (the Overview's form) or
    a unique start of its id. Text that names none, or several, is kept as typed."""
    changes: dict[str, str] = {}
    if filters.event_id:
        try:
            changes["event_id"] = store.get_event(filters.event_id).id
        except (EventNotFound, JobNotFound):
            pass
    if filters.worker:
        text = filters.worker
        host, _, pid = text.rpartition("/")
        start = f"{host}:{pid}:" if host and pid.isdigit() else text
        found = [w.id for w in store.list_workers(include_stopped=True)
                 if w.id == text or w.id.startswith(start)]
        if len(found) == 1:
            changes["worker"] = found[0]
    return replace(filters, **changes) if changes else filters


def summary(store: Store, now: float | None = None,
            rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None, *,
            done_last_minute: int | None = None, stale_after: float = 15.0,
            node: str | None = None) -> Summary:
    """The numbers shown on every screen (see :meth:`Store.summary`). The jobs of a
    worker of this host (named by ``node``, else the host name) whose process is gone
    count as stalled at once, however fresh its last heartbeat."""
    at = time.time() if now is None else now
    return store.summary(at, rates, done_last_minute=done_last_minute,
                         stale_after=stale_after, gone=gone_workers(store, at, stale_after, node))


def gone_workers(store: Store, now: float, stale_after: float,
                 node: str | None = None) -> tuple[str, ...]:
    """The workers the store counts alive (a fresh heartbeat) that are of this host and
    whose process is gone."""
    return tuple(w for w in store.live_worker_ids(now, stale_after) if worker_gone(w, node))


def live_worker_ids(store: Store, now: float, stale_after: float,
                    node: str | None = None) -> frozenset[str]:
    """Workers registered as running whose heartbeat is younger than ``stale_after``, less
    those of this host whose process is gone."""
    return frozenset(w for w in store.live_worker_ids(now, stale_after)
                     if not worker_gone(w, node))


def throughput(store: Store, now: float | None = None, *,
               minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Completions and failed attempts per minute, oldest minute first."""
    return store.throughput(now, minutes=minutes)


def recent_run_times(store: Store, *, sample: int = RECENT_SAMPLE
                     ) -> tuple[RunTimes, dict[str, RunTimes]]:
    """p50/p95 run time, overall and per queue, of the newest ``sample`` completions."""
    return store.recent_run_times(sample=sample)


def worker_loads(store: Store, *, include_stopped: bool = False) -> list[WorkerLoad]:
    """Registered workers with the jobs each holds a lease on."""
    return store.worker_loads(include_stopped=include_stopped)


def job_page(store: Store, filters: JobFilter | None = None, *, limit: int = 100,
             after: PageKey | None = None, oldest_first: bool = False, sort: str = "newest",
             now: float | None = None) -> JobPage:
    """One page of jobs in ``sort`` order from ``after`` on (see :meth:`Store.keyset_page`).

    Raises:
        ValueError: ``sort`` is not one of :data:`JOB_SORTS`.
    """
    return store.keyset_page(filters, limit=limit, after=after, oldest_first=oldest_first,
                             sort=sort, now=now)


def page_key_at(store: Store, at: float, filters: JobFilter | None = None, *,
                oldest_first: bool = False) -> PageKey:
    """The page key that starts a listing at the time ``at``."""
    return store.page_key_at(at, filters, oldest_first=oldest_first)


def tail_logs(store: Store, *, after_id: int = 0, job_id: str | None = None, min_level: int = 0,
              text: str | None = None, limit: int = 500) -> list[LogRow]:
    """Stored log records after ``after_id``, oldest first; with 0, the newest ``limit``."""
    return store.tail_logs(after_id=after_id, job_id=job_id, min_level=min_level, text=text,
                           limit=limit)


def count_jobs_capped(store: Store, filters: JobFilter | None = None, *,
                      cap: int = 10_000) -> tuple[int, bool]:
    """How many jobs match, counting no further than ``cap``; returns (count, capped)."""
    return store.count_jobs_capped(filters, cap=cap)


def finished_per_second(store: Store, since: float,
                        until: float | None = None) -> tuple[dict[int, int], dict[int, int]]:
    """Completions and failed attempts per whole second in ``[since, until)``."""
    return store.finished_per_second(since, until)


def oldest_due_by_queue(store: Store, now: float) -> list[tuple[str, float | None]]:
    """Each queue with waiting jobs and the ``run_at`` of its oldest due one."""
    return store.queue_oldest(now)


def has_table(store: Store, name: str) -> bool:
    """True when the database holds table ``name`` (newer features add tables)."""
    return store.has_table(name)


__all__ = ["JOB_SORTS", "JOB_STATES", "JobPage", "LogLine", "PageKey",
           "RECENT_SAMPLE", "RunTimes", "RunningJob", "SORT_WINDOW", "Summary", "WorkerLoad",
           "count_jobs_capped", "finished_per_second", "has_table", "job_page",
           "live_worker_ids", "oldest_due_by_queue", "page_key_at", "percentile",
           "recent_run_times", "summary", "tail_logs", "throughput",
           "worker_loads", "JobDetail", "job_detail", "resolve_job_id"]
