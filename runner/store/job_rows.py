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
class Ack:
    """A finished attempt waiting to be written, with what follows from it.

    ``results`` (result store rows) and ``jobs`` (pipeline steps) are written in
    the transaction that marks the job completed, and only if it does.
    """

    job_id: str
    attempt: int
    started_at: float | None
    finished_at: float
    results: tuple[tuple[str, bytes], ...] = ()
    jobs: tuple[NewJob, ...] = ()


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
    rows = [(j.id, j.task, j.queue, j.priority,
             "scheduled" if j.run_at > created else "available", j.data, j.args,
             j.max_attempts, j.run_at, created, j.unique_key, j.event_id, j.schedule)
            for j in jobs]
    if len(rows) == 1:  # the common single enqueue: execute() costs less than executemany()
        conn.execute(_INSERT_JOB, rows[0])
    else:
        conn.executemany(_INSERT_JOB, rows)
    count_enqueued(conn, jobs)


_INSERT_JOB = ("INSERT INTO runner_job (id, task, queue, priority, state, data, args, "
               "max_attempts, run_at, created_at, unique_key, event_id, schedule) "
               "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")


def check_room(conn: sqlite3.Connection, jobs: Sequence[NewJob], queue_size: int) -> None:
    """Raise QueueFull when adding ``jobs`` would put more than ``queue_size`` in a queue.

    Reads the per-queue count the schema's triggers keep (one row, whatever the
    backlog); inside the caller's write transaction, so concurrent producers
    can never overshoot the bound between them.
    """
    if not queue_size:
        return
    adding: dict[str, int] = {}
    for job in jobs:
        adding[job.queue] = adding.get(job.queue, 0) + 1
    for queue, count in adding.items():
        row = conn.execute("SELECT waiting FROM runner_queue WHERE queue = ?",
                           (queue,)).fetchone()
        waiting = row[0] if row else 0
        if waiting + count > queue_size:
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


_ACK_SQL = (
    "UPDATE runner_job SET state='completed', started_at=coalesce(?, started_at), "
    "finished_at=?, lease_owner=NULL, lease_expires_at=NULL, reason=NULL "
    "WHERE id=? AND attempt=? AND state IN ('executing','available')")


def write_acks(conn: sqlite3.Connection, acks: Sequence[Ack],
               labels: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Mark attempts completed, each with its results and next steps, and count them.

    An attempt handed back meanwhile (shutdown, an expired lease) still counts
    while no later attempt has claimed the job; once one has, the late outcome
    is not written and the job's next attempt writes its own. ``labels`` (task
    and queue by job id, from the claim) spare the counting a read.
    """
    plain = [a for a in acks if not a.results and not a.jobs]
    changed = conn.executemany(_ACK_SQL, [(a.started_at, a.finished_at, a.job_id, a.attempt)
                                          for a in plain]).rowcount
    written: list[Ack] | None = plain if changed == len(plain) else None
    for a in acks:
        if (a.results or a.jobs) and conn.execute(
                _ACK_SQL, (a.started_at, a.finished_at, a.job_id, a.attempt)).rowcount:
            write_follow_ups(conn, a.job_id, a.results, a.jobs, a.finished_at)
            if written is not None:
                written.append(a)
    if written is None:  # some row of the batch was not written: find out which from the rows
        count_completions(conn, acks)
    else:
        count_completions(conn, written, labels)


def write_follow_ups(conn: sqlite3.Connection, job_id: str,
                     results: Sequence[tuple[str, bytes]], jobs: Sequence[NewJob],
                     now: float) -> None:
    """Results and next steps of a settled job, inside the transaction that settles it.

    A next step whose id belongs to a finished job (a pipeline enqueued again)
    makes that job wait again, as an enqueue would; one whose id is still
    waiting or running is not written, and the settled job's reason says so
    rather than its whole outcome failing for ever.
    """
    if results:
        conn.executemany("INSERT OR REPLACE INTO runner_kv (key, value) VALUES (?, ?)", results)
    for job in jobs:
        conn.execute("SAVEPOINT follow_up")
        try:
            write_jobs(conn, [job], now)
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK TO follow_up")
            if not rearm_job(conn, job, now):
                conn.execute("UPDATE runner_job SET reason=? WHERE id=?",
                             (f"next step {job.id} not enqueued: {exc}"[:500], job_id))
        conn.execute("RELEASE follow_up")


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

