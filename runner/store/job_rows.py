"""Rows of ``runner_job``: what producers and workers write, and the statements that write them.

Shared by the job storage, the scheduler and the event store, which insert jobs
inside transactions of their own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runner.errors import QueueFull
from runner.store.counters import count_completions, count_enqueued
from runner.store.models import WAITING_SQL


@dataclass(frozen=True)
class NewJob:
    """What a producer writes for one job."""

    id: str
    task: str
    queue: str
    priority: int
    data: bytes
    args: str | None
    max_attempts: int
    run_at: float
    unique_key: str | None = None
    event_id: str | None = None
    schedule: str | None = None


@dataclass(frozen=True)
class Claimed:
    """A job a worker of this process holds under lease."""

    id: str
    data: bytes
    attempt: int
    started_at: float


@dataclass(frozen=True)
class FailureInfo:
    """One failed attempt, as recorded in ``runner_job_error``."""

    kind: str
    error_type: str
    message: str
    traceback: str
    started_at: float | None = None


def write_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], created: float, *,
               queue_size: int = 0) -> None:
    """Insert job rows inside the caller's write transaction.

    Raises:
        QueueFull: with ``queue_size`` > 0, a queue would hold more than that many
            waiting jobs; nothing is written.
    """
    check_room(conn, jobs, queue_size)
    conn.executemany(
        "INSERT INTO runner_job (id, task, queue, priority, state, data, args, "
        "max_attempts, run_at, created_at, unique_key, event_id, schedule) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(j.id, j.task, j.queue, j.priority,
          "scheduled" if j.run_at > created else "available", j.data, j.args,
          j.max_attempts, j.run_at, created, j.unique_key, j.event_id, j.schedule)
         for j in jobs])
    count_enqueued(conn, jobs)


def check_room(conn: sqlite3.Connection, jobs: Sequence[NewJob], queue_size: int) -> None:
    """Raise QueueFull when adding ``jobs`` would put more than ``queue_size`` in a queue."""
    if not queue_size:
        return
    for queue in {job.queue for job in jobs}:
        adding = sum(1 for job in jobs if job.queue == queue)
        (waiting,) = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM runner_job INDEXED BY "
            f"runner_job_queue_waiting WHERE queue = ? AND state IN {WAITING_SQL} "
            f"LIMIT ?)", (queue, queue_size)).fetchone()
        if waiting + adding > queue_size:
            raise QueueFull(
                f"queue '{queue}' is full: {waiting} jobs waiting, queue_size is "
                f"{queue_size}; nothing was written (raise [worker] queue_size or "
                "start more workers)")


def rearm_job(conn: sqlite3.Connection, job: NewJob, now: float, *,
              queue_size: int = 0) -> bool:
    """Make a finished job (same id) wait again with new data; False if it is not finished.

    This is what enqueueing a huey Task object a second time means: it runs again.
    The row keeps its history (attempts, errors); its attempt budget starts afresh.
    """
    check_room(conn, [job], queue_size)
    return conn.execute(
        "UPDATE runner_job SET state=?, task=?, queue=?, priority=?, data=?, args=?, "
        "max_attempts=attempt + ?, run_at=?, started_at=NULL, finished_at=NULL, reason=NULL, "
        "crashes=0, lease_owner=NULL, lease_expires_at=NULL, unique_key=?, event_id=?, "
        "schedule=? WHERE id=? AND state IN ('completed','dead','cancelled')",
        ("scheduled" if job.run_at > now else "available", job.task, job.queue, job.priority,
         job.data, job.args, job.max_attempts, job.run_at, job.unique_key, job.event_id,
         job.schedule, job.id)).rowcount == 1


def write_acks(conn: sqlite3.Connection,
                acks: list[tuple[str, float | None, float]],
                labels: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Mark completions written and count them; ``labels``: task and queue by job id."""
    changed = conn.executemany(
        "UPDATE runner_job SET state='completed', started_at=coalesce(?, started_at), "
        "finished_at=?, lease_owner=NULL, lease_expires_at=NULL, reason=NULL "
        "WHERE id=? AND state='executing'",
        [(started, finished, job_id) for job_id, started, finished in acks]).rowcount
    count_completions(conn, acks, labels if changed == len(acks) else None)


def record_failure(conn: sqlite3.Connection, job_id: str, attempt: int,
                    failure: FailureInfo, worker: str | None, now: float) -> None:
    conn.execute(
        "INSERT INTO runner_job_error (job_id, attempt, kind, error_type, message, traceback, "
        "worker, started_at, failed_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (job_id, attempt, failure.kind, failure.error_type, failure.message,
         failure.traceback, worker, failure.started_at, now))
    conn.execute(
        "UPDATE runner_job SET failures=failures+1, first_failed_at=coalesce(first_failed_at, ?),"
        " last_failed_at=?, error_type=?, error_message=?, last_error=? WHERE id=?",
        (now, now, failure.error_type, failure.message[:2000], failure.traceback, job_id))

