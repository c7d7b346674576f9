"""Enqueue: new job rows (``available`` or ``scheduled``) within their queues' bounds."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence

from runner.store.job_rows import Enqueued, NewJob, QueueBound, queue_full
from runner.store.sqlite.conditions import CLAIMABLE_WHERE, PARKED_WHERE
from runner.store.sqlite.counters import (
    count_backpressure,
    count_enqueued,
    count_where,
)
from runner.store.sqlite.multirow import insert_rows, insert_sql
from runner.store.sqlite.transitions import intake, parking
from runner.store.sqlite.transitions.by_hand import CANCEL_TIMES
from runner.store.sqlite.unique_keys import unique_duplicates
from runner.store.tables import requested_sql


def enqueue(conn: sqlite3.Connection, jobs: Sequence[NewJob], created: float, *,
            queue_size: int = 0, bounds: Mapping[str, QueueBound] | None = None) -> Enqueued:
    """Insert job rows: ``scheduled`` when ``run_at`` is later than ``created``, else ``available``.

    A job whose ``unique_key`` names a job that still counts (see
    :mod:`runner.store.sqlite.unique_keys`) is not written; the result maps it to that job.
    Each queue is bounded by its entry in ``bounds``, else by ``queue_size``
    with ``reject`` (see :class:`QueueBound`); ``drop_oldest`` cancels the
    queue's oldest waiting jobs after the insert, in this transaction, so the
    bound holds whatever other producers do.

    Raises:
        QueueFull: a ``reject`` or ``block`` queue would hold more than its bound;
            nothing is written.
    """
    # Counts and unique keys are read from runner_job: the intake's jobs go there first.
    intake.absorb(conn)
    duplicates: dict[str, str] = {}
    if any(j.unique_key is not None for j in jobs):  # see runner.store.sqlite.unique_keys
        duplicates = unique_duplicates(conn, jobs, created)
        if duplicates:
            jobs = [j for j in jobs if j.id not in duplicates]
    if not jobs:
        return Enqueued(duplicates)
    trim = check_room(conn, jobs, queue_size, bounds)
    if len(jobs) == 1:
        _insert_one(conn, jobs[0], created)
    else:
        insert_jobs(conn, jobs, created)
    count_enqueued(conn, jobs)
    dropped: list[str] = []
    for queue, bound in trim.items():
        dropped += drop_oldest(conn, queue, bound, now=created,
                               written=[j.id for j in jobs if j.queue == queue])
    return Enqueued(duplicates, tuple(dropped))


def _insert_one(conn: sqlite3.Connection, j: NewJob, created: float) -> None:
    row = (j.id, j.task, j.queue, j.priority,
           "scheduled" if j.run_at > created else "available", j.data, j.args,
           j.max_attempts, j.run_at, created)
    optional = (j.unique_key, j.event_id, j.schedule, j.concurrency_key)
    if optional == (None, None, None, None):
        # Most jobs: the NULL columns left out, as insert_jobs does (each None bound
        # goes through sqlite3's adapter lookup: see runner.store.sqlite.multirow).
        conn.execute(_INSERT_ONE, row)
    else:
        conn.execute(_INSERT_ONE_OPTIONAL, row + optional)


_JOB_COLUMNS = ("id", "task", "queue", "priority", "state", "data", "args", "max_attempts",
                "run_at", "created_at")
#: Columns most jobs leave NULL.
_OPTIONAL = ("unique_key", "event_id", "schedule", "concurrency_key")


def _columns(optional: bool) -> tuple[str, ...]:
    return _JOB_COLUMNS + _OPTIONAL if optional else _JOB_COLUMNS


def _insert_many(count: int, optional: bool) -> str:
    """One INSERT of ``count`` job rows, with or without the optional columns."""
    return insert_sql("runner_job", _columns(optional), count)


_INSERT_ONE = _insert_many(1, False)
_INSERT_ONE_OPTIONAL = _insert_many(1, True)


def insert_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], created: float) -> None:
    """Insert new jobs (``scheduled`` when ``run_at`` is after ``created``, else
    ``available``), many rows per statement (see :mod:`runner.store.sqlite.multirow`):
    the optional columns only when a job of the batch sets one, the payload as a
    ``bytearray``.
    """
    optional = any(j.unique_key is not None or j.event_id is not None
                   or j.schedule is not None or j.concurrency_key is not None for j in jobs)
    if optional:
        rows = [(j.id, j.task, j.queue, j.priority,
                 "scheduled" if j.run_at > created else "available", bytearray(j.data), j.args,
                 j.max_attempts, j.run_at, created, j.unique_key, j.event_id, j.schedule,
                 j.concurrency_key) for j in jobs]
    else:
        rows = [(j.id, j.task, j.queue, j.priority,
                 "scheduled" if j.run_at > created else "available", bytearray(j.data), j.args,
                 j.max_attempts, j.run_at, created) for j in jobs]
    insert_rows(conn, "runner_job", _columns(optional), rows)


def check_room(conn: sqlite3.Connection, jobs: Sequence[NewJob], queue_size: int,
               bounds: Mapping[str, QueueBound] | None = None) -> dict[str, QueueBound]:
    """Raise QueueFull when adding ``jobs`` would overfill a queue that does not drop.

    Reads the per-queue count the counters keep (one row, whatever the
    backlog); inside the caller's write transaction, so concurrent producers
    can never overshoot the bound between them. Returns the ``drop_oldest``
    queues that will hold too many once the jobs are in.
    """
    if not queue_size and not bounds:
        return {}
    adding: dict[str, int] = {}
    for job in jobs:
        adding[job.queue] = adding.get(job.queue, 0) + 1
    trim: dict[str, QueueBound] = {}
    for queue, count in adding.items():
        bound = (bounds or {}).get(queue) or QueueBound(queue_size)
        if not bound.max_size:
            continue
        row = conn.execute("SELECT waiting FROM runner_queue WHERE queue = ?",
                           (queue,)).fetchone()
        waiting = row[0] if row else 0
        if waiting + count <= bound.max_size:
            continue
        if bound.on_full == "drop_oldest":
            trim[queue] = bound
            continue
        raise queue_full(queue, waiting, bound.max_size, count)
    return trim


def drop_oldest(conn: sqlite3.Connection, queue: str, bound: QueueBound, *,
                now: float, written: Sequence[str] = ()) -> list[str]:
    """Waiting → ``cancelled`` for the oldest waiting jobs of a queue over its bound.

    Oldest means due the longest (``run_at``, then insertion order). The jobs
    ``written`` by the same call go last, so an enqueue never drops what it was
    called to write (a job due now is older than the jobs scheduled for
    tomorrow); only a call that alone writes more than the bound drops the
    oldest of its own. The rows are kept, with the reason, and counted as
    cancelled and as dropped.
    """
    ids = _drop_picked(conn, queue, bound, now, written)
    if written:
        ids += _drop_picked(conn, queue, bound, now, ())
    count_backpressure(conn, queue, dropped=len(ids))
    parking.room_for(conn, ids)
    return ids


def _drop_picked(conn: sqlite3.Connection, queue: str, bound: QueueBound, now: float,
                 spared: Sequence[str]) -> list[str]:
    """Cancel the oldest waiting jobs of ``queue`` over its bound, but none of ``spared``."""
    (waiting,) = conn.execute("SELECT waiting FROM runner_queue WHERE queue = ?",
                              (queue,)).fetchone()
    excess = waiting - bound.max_size
    if excess <= 0:
        return []
    # One parameter whatever the batch's size (each id bound alone could pass SQLite's limit).
    spare = " AND id NOT IN (SELECT value FROM json_each(?))" if spared else ""
    spare_ids = (json.dumps(list(spared)),) if spared else ()
    # Parked jobs too (runner.store.parking): each index's oldest, then the oldest of both.
    pick = (f"rowid IN (SELECT rowid FROM (SELECT * FROM (SELECT rowid, run_at "
            f"FROM runner_job INDEXED BY runner_job_queue_claim WHERE queue = ? AND "
            f"{CLAIMABLE_WHERE}{spare} ORDER BY run_at, rowid LIMIT ?) UNION ALL SELECT * FROM "
            f"(SELECT rowid, run_at FROM runner_job INDEXED BY runner_job_parked_queue "
            f"WHERE queue = ? AND {PARKED_WHERE}{spare} ORDER BY run_at, rowid LIMIT ?)) "
            f"ORDER BY run_at, rowid LIMIT ?)")
    picked = (queue, *spare_ids, excess, queue, *spare_ids, excess, excess)
    count_where(conn, "cancelled", pick, picked)
    reason = (f"dropped: queue '{queue}' was full ({bound.max_size} waiting; on_full "
              "drop_oldest)")
    rows = conn.execute(
        f"UPDATE runner_job SET state='cancelled', {CANCEL_TIMES}, reason=?, parked=NULL "
        f"WHERE {pick} "
        f"RETURNING id, run_at, rowid", (now, reason, *picked)).fetchall()
    return [r[0] for r in sorted(rows, key=lambda r: (r[1], r[2]))]


def rearm(conn: sqlite3.Connection, job: NewJob, now: float, *, queue_size: int = 0) -> bool:
    """A finished job (same id) → waiting again with new data; False if it is not finished.

    This is what enqueueing a huey Task object a second time means: it runs again.
    The row keeps its history (attempts, errors); its attempt budget starts afresh.
    """
    check_room(conn, [job], queue_size)
    return conn.execute(
        "UPDATE runner_job SET state=?, task=?, queue=?, priority=?, data=?, args=?, "
        f"max_attempts=attempt + ? - {requested_sql()}, run_at=?, started_at=NULL, "
        "finished_at=NULL, reason=NULL, "
        "crashes=0, lease_owner=NULL, lease_expires_at=NULL, parked=NULL, unique_key=?, "
        "event_id=?, "
        "schedule=?, concurrency_key=? WHERE id=? AND state IN ('completed','dead','cancelled')",
        ("scheduled" if job.run_at > now else "available", job.task, job.queue, job.priority,
         job.data, job.args, job.max_attempts, job.run_at, job.unique_key, job.event_id,
         job.schedule, job.concurrency_key, job.id)).rowcount == 1
