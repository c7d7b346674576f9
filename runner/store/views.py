"""What the dashboard's panels and a metrics scrape read, the same for every backend.

The store fills these (see :class:`runner.store.backend.Store`); the readmodel
and the dashboard show them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from runner.store.rows import JobFilter, JobRow, LogRow, WorkerRow
from runner.store.states import JobState

#: States the Jobs screen cycles through (``None`` is every job).
JOB_STATES: tuple[str | None, ...] = (None, *(s.value for s in (
    JobState.AVAILABLE, JobState.SCHEDULED, JobState.EXECUTING, JobState.RETRYING,
    JobState.DEAD, JobState.COMPLETED, JobState.CANCELLED)))


@dataclass(frozen=True)
class Summary:
    """The numbers shown on every screen."""

    at: float
    waiting: int
    """Jobs due now and not started (``available``)."""
    running: int
    """Executing jobs whose worker is alive (its heartbeat is fresh)."""
    scheduled: int
    retrying: int
    dead: int
    """Dead jobs, counted up to the limit the summary was read with."""
    completed_per_minute: float
    """Completions in the last 60 seconds."""
    error_rate: float | None
    """Failed attempts / (completions + failed attempts) over the last hour; None if idle."""
    oldest_waiting_age: float | None
    """Seconds the oldest due waiting job has waited (the latency)."""
    stalled: int = 0
    """Executing jobs whose worker is dead or silent: nobody is running them."""
    dead_capped: bool = False
    """More dead jobs than ``dead`` exist: the count stopped at its limit."""


#: Completions the run-time percentiles are read from.
RECENT_SAMPLE = 1_000


@dataclass(frozen=True)
class RunTimes:
    """Run-time percentiles from the newest completions (how many completed per minute
    is counted exactly, over the last minute, by the summary and the queues)."""

    p50: float | None
    p95: float | None
    sample: int


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


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


#: Orders the Jobs screen offers; the last two rank within :data:`SORT_WINDOW`.
JOB_SORTS = ("newest", "oldest", "duration", "attempts")


#: Duration and attempt sorts rank the newest this many matching jobs (no index orders
#: by them, and sorting a million rows every refresh would stall the dashboard).
SORT_WINDOW = 10_000


@dataclass(frozen=True)
class PageKey:
    """Where a page of jobs starts: just past this (created_at, rowid) in the chosen order.

    In the ranked sorts (duration, attempts) ``rowid`` is the offset into the ranking.
    """

    created_at: float
    rowid: int


@dataclass(frozen=True)
class JobPage:
    """One page of jobs and the key that continues it, if there is more."""

    jobs: list[JobRow]
    next_key: PageKey | None


#: A stored log record (``runner_log``) as the dashboard shows it.
LogLine = LogRow


#: Backlog counts stop here, so a scrape costs the same with a million waiting jobs.
COUNT_LIMIT = 100_000
#: The summary strip counts dead jobs (history, read at every refresh) up to here, as the
#: dashboard's job lists count their matches.
SUMMARY_DEAD_LIMIT = 10_000
#: The Failures screen groups the newest failed jobs up to here (at most one more is
#: counted, to know there are more): its refresh costs the same with a million dead jobs.
FAILURE_CAP = 10_000


@dataclass(frozen=True)
class QueueGauges:
    """One queue right now."""

    queue: str
    due: int
    """Waiting jobs whose time has come (the backlog), up to :data:`COUNT_LIMIT`."""
    scheduled: int
    """Waiting jobs due later (delayed, or retrying after a backoff), up to the limit."""
    running: int
    """Jobs claimed by a worker (running or prefetched)."""
    oldest_waiting_seconds: float
    """How long the oldest due job has waited; 0 when none waits."""


@dataclass(frozen=True)
class DatabaseSnapshot:
    """The database-wide figures at one moment."""

    at: float
    totals: list[TaskTotals]
    queues: list[QueueGauges]
    dead: int
    """Jobs in ``dead`` now, up to :data:`COUNT_LIMIT`."""
    workers: int
    """Worker processes with a fresh heartbeat."""
    schedule_lags: dict[str, float] = field(default_factory=dict)
    backpressure: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per queue: jobs rejected and jobs dropped by its bound, lifetime counters."""
    paused_queues: dict[str, bool] = field(default_factory=dict)
    """Queues with a recorded pause or resume: whether they are paused."""


#: Upper bounds (seconds) of the duration histogram's buckets; +Inf is ``completed``.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
           1800.0)


@dataclass(frozen=True)
class TaskTotals:
    """Lifetime counters of one (task, queue)."""

    task: str
    queue: str
    enqueued: int
    completed: int
    failed: int
    """Failed attempts (each retry that failed, each crash)."""
    retried: int
    """Attempts that failed or crashed and were scheduled to run again."""
    dead: int
    cancelled: int
    duration_sum: float
    """Seconds of processing time of the completed jobs."""
    buckets: tuple[int, ...]
    """Completed jobs that took at most each of :data:`BUCKETS` (cumulative)."""


# -- what every backend computes from the rows it read -----------------------------------


def run_times(rows: Sequence[tuple[str, float, float | None]]
              ) -> tuple[RunTimes, dict[str, RunTimes]]:
    """p50/p95 run time, overall and per queue, of completions ``(queue, finished_at,
    run time)``."""

    def stats(picked: Sequence[tuple[str, float, float | None]]) -> RunTimes:
        took = [d for _, _, d in picked if d is not None and d >= 0]
        return RunTimes(percentile(took, 0.50), percentile(took, 0.95), len(picked))

    by_queue: dict[str, list[tuple[str, float, float | None]]] = {}
    for row in rows:
        by_queue.setdefault(row[0], []).append(row)
    return stats(rows), {queue: stats(picked) for queue, picked in by_queue.items()}


def worker_loads(running: Iterable[tuple[str | None, str, str, float | None]],
                 workers: Iterable[WorkerRow]) -> list[WorkerLoad]:
    """Each worker with the running jobs ``(owner, id, task, started_at)`` it holds."""
    by_owner: dict[str, list[RunningJob]] = {}
    for owner, job_id, task, started in running:
        by_owner.setdefault(owner or "", []).append(RunningJob(job_id, task, started))
    return [WorkerLoad(w, by_owner.get(w.id, [])) for w in workers]


def check_sort(sort: str) -> None:
    """Raises ValueError unless ``sort`` is one of :data:`JOB_SORTS`."""
    if sort not in JOB_SORTS:
        raise ValueError(f"unknown sort {sort!r}: choose one of {', '.join(JOB_SORTS)}")


def in_insertion_order(filters: JobFilter) -> bool:
    """Whether a listing by these filters pages in insertion order (by row number):
    with one state or a task, an index by (state|task, created_at) gives the order."""
    return filters.state in (None, "waiting", "failed") and not filters.task


def keyset_page(rows: Sequence[tuple], limit: int, created_at: int) -> JobPage:
    """A page from up to ``limit + 1`` rows ``(row number, *job columns)``; the extra row
    says there is more. ``created_at`` is that column's place among the job columns."""
    jobs = [JobRow(*row[1:]) for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return JobPage(jobs, PageKey(last[1 + created_at], last[0]) if last is not None else None)


def ranked_page(rows: Sequence[tuple], limit: int, offset: int) -> JobPage:
    """A page of a ranked sort from up to ``limit + 1`` job rows read at ``offset``."""
    jobs = [JobRow(*row) for row in rows[:limit]]
    return JobPage(jobs, PageKey(0.0, offset + limit) if len(rows) > limit else None)
