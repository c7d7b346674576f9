"""Reads behind the terminal dashboard (``python -m tui``), one function per panel.

Every function takes a (normally read-only) :class:`Database` and returns plain
dataclasses, so no snapshot outlives the call. Tables that a given database may
not have yet (schedules, events, logs) read as empty instead of failing: the
dashboard works on any version. The statements live in the store
(:mod:`runner.store.dashboard_reads`); this module is what the dashboard imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runner.errors import JobNotFound
from runner.store.dashboard_reads import (
    JOB_SORTS,
    JOB_STATES,
    RECENT_SAMPLE,
    SORT_WINDOW,
    JobPage,
    LogLine,
    PageKey,
    QueueLoad,
    RunningJob,
    RunTimes,
    Summary,
    WorkerLoad,
    job_page,
    live_worker_ids,
    page_key_at,
    percentile,
    queue_loads,
    recent_run_times,
    stalled_count,
    summary,
    throughput,
    worker_loads,
)
from runner.store.db import Database
from runner.store.factory import store_for
from runner.store.integrity import has_table, index_hint
from runner.store.logs import tail_logs
from runner.store.models import AttemptError, JobRow, LogRow
from runner.store.states import JobState
from runner.store.stats import count_jobs_capped, finished_per_second
from runner.store.stats import queue_oldest as oldest_due_by_queue

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


def job_detail(db: Database, job_id: str, *, log_limit: int = 500) -> JobDetail:
    """A job with its failed attempts and its newest log lines.

    Raises:
        JobNotFound: no such job.
    """
    from runner.readmodel.results import job_result
    store = store_for(db)
    job = store.get_job(job_id)
    logs = store.tail_logs(job_id=job.id, limit=log_limit)
    result = job_result(db, job.id) if job.state == JobState.COMPLETED else None
    return JobDetail(job, store.job_errors(job.id), logs, result)


def resolve_job_id(db: Database, text: str) -> str:
    """The full id of the job ``text`` names (a whole id, or a unique start or end of one).

    Text that names no job is returned unchanged: log lines can outlive their job.
    """
    try:
        return store_for(db).get_job(text).id
    except JobNotFound:
        return text


__all__ = ["JOB_SORTS", "JOB_STATES", "JobPage", "LogLine", "PageKey", "QueueLoad",
           "RECENT_SAMPLE", "RunTimes", "RunningJob", "SORT_WINDOW", "Summary", "WorkerLoad",
           "count_jobs_capped", "finished_per_second", "has_table", "index_hint", "job_page",
           "live_worker_ids", "oldest_due_by_queue", "page_key_at", "percentile", "queue_loads",
           "recent_run_times", "stalled_count", "summary", "tail_logs", "throughput",
           "worker_loads", "JobDetail", "job_detail", "resolve_job_id"]
