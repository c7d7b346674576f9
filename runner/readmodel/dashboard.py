"""Reads behind the terminal dashboard (``python -m tui``), one function per panel.

Every function takes a (normally read-only) :class:`Database` and returns plain
dataclasses, so no snapshot outlives the call. Tables that a given database may
not have yet (schedules, events, logs) read as empty instead of failing: the
dashboard works on any version. The statements live in the store
(:mod:`runner.store.dashboard_reads`); this module is what the dashboard imports.
"""

from __future__ import annotations

from runner.store.dashboard_reads import (
    JOB_STATES,
    JobDetail,
    JobPage,
    LogLine,
    PageKey,
    QueueLoad,
    RunningJob,
    Summary,
    WorkerLoad,
    count_jobs_capped,
    finished_per_second,
    has_table,
    index_hint,
    job_detail,
    job_page,
    live_worker_ids,
    oldest_due_by_queue,
    page_key_at,
    queue_loads,
    stalled_count,
    summary,
    tail_logs,
    throughput,
    worker_loads,
)

__all__ = ["JOB_STATES", "JobDetail", "JobPage", "LogLine", "PageKey", "QueueLoad", "RunningJob",
           "Summary", "WorkerLoad", "count_jobs_capped", "finished_per_second", "has_table",
           "index_hint", "job_detail", "job_page", "live_worker_ids", "oldest_due_by_queue",
           "page_key_at", "queue_loads", "stalled_count", "summary", "tail_logs", "throughput",
           "worker_loads"]
