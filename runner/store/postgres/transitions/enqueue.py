"""Enqueue in PostgreSQL: new job rows within their queues' bounds, one statement a batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import psycopg

from runner.store.job_rows import Enqueued, NewJob, QueueBound, queue_full
from runner.store.postgres.connection import lock_key
from runner.store.postgres.counting import (
    count_backpressure,
    count_where,
)
from runner.store.postgres.transitions.values import (
    _AVAILABLE,
    _CANCELLED,
    _FINAL,
    _LIVE,
    _SCHEDULED,
    _WAITING,
    CANCEL_TIMES,
)
from runner.store.tables import requested_sql


def enqueue(conn: psycopg.Connection, jobs: Sequence[NewJob], created: float, *,
            queue_size: int = 0, channel: str | None = None) -> None:
    """Insert job rows (``scheduled`` when ``run_at`` is later than ``created``), counted,
    with the wake-up, in one statement (on its own, it commits by itself).

    Raises:
        QueueFull: a queue would hold more than ``queue_size`` waiting jobs; the caller
            rolls its transaction back (nothing is written).
        psycopg.errors.UniqueViolation: an id, or a live job's unique key, is taken.
    """
    if not jobs:
        return
    if len(jobs) == 1:
        # One job (a user's call): scalar parameters, as encoding fourteen one-element
        # arrays took about as long on the client as the statement on the server.
        j = jobs[0]
        conn.execute(_ENQUEUE_ONE, (
            j.id, j.task, j.queue, j.priority, _SCHEDULED if j.run_at > created else _AVAILABLE,
            j.data, j.args, j.max_attempts, j.run_at, created, j.unique_key, j.event_id,
            j.schedule, j.concurrency_key, channel, channel))
        check_room(conn, jobs, queue_size)
        return
    conn.execute(_ENQUEUE, {
        "id": [j.id for j in jobs], "task": [j.task for j in jobs],
        "queue": [j.queue for j in jobs], "priority": [j.priority for j in jobs],
        "state": [_SCHEDULED if j.run_at > created else _AVAILABLE for j in jobs],
        "data": [j.data for j in jobs], "args": [j.args for j in jobs],
        "max_attempts": [j.max_attempts for j in jobs], "run_at": [j.run_at for j in jobs],
        "created_at": [created] * len(jobs), "unique_key": [j.unique_key for j in jobs],
        "event_id": [j.event_id for j in jobs], "schedule": [j.schedule for j in jobs],
        "concurrency_key": [j.concurrency_key for j in jobs], "channel": channel})
    check_room(conn, jobs, queue_size)


_COLUMNS = ("id", "task", "queue", "priority", "state", "data", "args", "max_attempts",
            "run_at", "created_at", "unique_key", "event_id", "schedule", "concurrency_key")
_TYPES = ("text", "text", "text", "bigint", "text", "bytea", "text", "bigint", "float8",
          "float8", "text", "text", "text", "text")
#: The counters are upserted before the rows go in, and the per-queue count (a
#: statement trigger) after: every transition takes those locks in that order, so
#: two transactions never wait on each other crosswise.
_ENQUEUE_REST = (
    "counted AS (INSERT INTO runner_job_total (task, queue, enqueued) "
    "SELECT task, queue, count(*) FROM new GROUP BY task, queue ORDER BY task, queue "
    "ON CONFLICT (task, queue, shard) DO UPDATE SET "
    "enqueued = runner_job_total.enqueued + excluded.enqueued RETURNING 1), "
    f"inserted AS (INSERT INTO runner_job ({', '.join(_COLUMNS)}) "
    f"SELECT {', '.join(_COLUMNS)} FROM new RETURNING 1) "
    "SELECT pg_notify(%(channel)s, '') WHERE %(channel)s::text IS NOT NULL")
_ENQUEUE = (
    f"WITH new ({', '.join(_COLUMNS)}) AS (SELECT * FROM unnest("
    + ", ".join(f"%({c})s::{t}[]" for c, t in zip(_COLUMNS, _TYPES, strict=True)) + ")), "
    + _ENQUEUE_REST)
#: :data:`_ENQUEUE` for one job, its values as positional scalars (then the channel twice).
_ENQUEUE_ONE = (
    f"WITH new ({', '.join(_COLUMNS)}) AS (VALUES ("
    + ", ".join(f"%s::{t}" for t in _TYPES) + ")), "
    + _ENQUEUE_REST.replace("%(channel)s", "%s"))


def enqueue_new(conn: psycopg.Connection, jobs: Sequence[NewJob], created: float, *,
                sizes: Mapping[str, int], channel: str | None = None,
                drops: Mapping[str, QueueBound] | None = None) -> Enqueued:
    """Enqueue ``jobs``, leaving out those whose unique key names a job that counts,
    with each queue of ``sizes`` bounded to that many waiting jobs.

    Each queue of ``drops`` (``on_full = "drop_oldest"``) keeps its bound by
    cancelling its oldest waiting jobs after the insert, under the queue's lock.

    A keyed job counts while it is in the new job's ``unique_states`` (default:
    waiting or running) and, with ``unique_for``, was created that recently.
    Keys are serialised with an advisory lock each, so concurrent producers
    write one job per key.

    Raises:
        QueueFull: a bounded queue would overflow (``.queue``, ``.room``); nothing written.
    """
    duplicates: dict[str, str] = {}
    keys = sorted({j.unique_key for j in jobs if j.unique_key is not None})
    for key in keys:  # one at a time, in order: two producers never lock crosswise
        conn.execute(f"SELECT pg_advisory_xact_lock({lock_key('%s')})",
                     (f"runner unique {key}",))
    fresh: list[NewJob] = []
    seen: dict[str, str] = {}
    for job in jobs:
        if job.unique_key is None:
            fresh.append(job)
            continue
        earlier = seen.get(job.unique_key) or _holder(conn, job, created)
        if earlier is not None:
            duplicates[job.id] = earlier
            continue
        seen[job.unique_key] = job.id
        fresh.append(job)
    # The bound of each queue is checked in the same transaction (see check_room).
    for queue, size in sorted(sizes.items()):
        check_room(conn, [j for j in fresh if j.queue == queue], size, before=True)
    dropping = sorted(q for q in (drops or {}) if any(j.queue == q for j in fresh))
    for queue in dropping:  # after check_room's locks, in order: never crosswise
        conn.execute(f"SELECT pg_advisory_xact_lock({lock_key('%s')})",
                     (f"runner queue {queue}",))
    enqueue(conn, fresh, created, channel=channel)
    dropped: list[str] = []
    for queue in dropping:
        dropped += drop_oldest(conn, queue, (drops or {})[queue], now=created,
                               written=[j.id for j in fresh if j.queue == queue])
    return Enqueued(duplicates, tuple(dropped))


def _holder(conn: psycopg.Connection, job: NewJob, created: float) -> str | None:
    """The job that holds ``job``'s unique key (see :func:`enqueue_new`), or None."""
    states = list(job.unique_states) or _LIVE
    since = created - job.unique_for if job.unique_for is not None else None
    row = conn.execute(
        "SELECT id FROM runner_job WHERE unique_key = %s AND state = ANY(%s) "
        "AND (%s::float8 IS NULL OR created_at >= %s) ORDER BY created_at DESC LIMIT 1",
        (job.unique_key, states, since, since)).fetchone()
    return row[0] if row else None


def notify(conn: psycopg.Connection, channel: str | None) -> None:
    """Wake the listening workers of every host once this transaction commits."""
    if channel:
        conn.execute("SELECT pg_notify(%s, '')", (channel,))


def check_room(conn: psycopg.Connection, jobs: Sequence[NewJob], queue_size: int, *,
               before: bool = False) -> None:
    """Raise QueueFull when the jobs just inserted put more than ``queue_size`` in a queue.

    Producers of a queue take its advisory lock (held to their commit) before
    they read its count, so each sees every other's jobs and producers on
    several hosts never overshoot the bound between them. Claims only lower
    the count and take no lock.
    """
    if not queue_size:
        return
    adding: dict[str, int] = {}
    for job in jobs:
        adding[job.queue] = adding.get(job.queue, 0) + 1
    names = sorted(adding)
    for name in names:  # one at a time, in order: two producers never lock crosswise
        conn.execute(f"SELECT pg_advisory_xact_lock({lock_key('%s')})",
                     (f"runner queue {name}",))
    rows = conn.execute("SELECT queue, sum(waiting)::bigint FROM runner_queue "
                        "WHERE queue = ANY(%s) GROUP BY queue ORDER BY queue",
                        (names,)).fetchall()
    counted = dict(rows)
    for queue in names:
        # ``before``: read ahead of the insert, else after it (the count then holds it).
        already = counted.get(queue, 0) - (0 if before else adding[queue])
        if already + adding[queue] > queue_size:
            raise queue_full(queue, already, queue_size, adding[queue])


def drop_oldest(conn: psycopg.Connection, queue: str, bound: QueueBound, *,
                now: float, written: Sequence[str] = ()) -> list[str]:
    """Waiting → ``cancelled`` for the oldest waiting jobs of a queue over its bound.

    Runs after the insert, under the queue's advisory lock the enqueue took, so
    producers on several hosts never leave the queue over its bound. Oldest means
    due the longest (``run_at``, then insertion order), but the jobs ``written``
    by the same call go last: an enqueue never drops what it was called to write
    (a job due now is older than the jobs scheduled for tomorrow); only a call that
    alone writes more than the bound drops the oldest of its own. The rows are
    kept with the reason, counted as cancelled and as dropped.
    """
    ids = _drop_picked(conn, queue, bound, now, written)
    if written:
        ids += _drop_picked(conn, queue, bound, now, ())
    count_backpressure(conn, queue, dropped=len(ids))
    return ids


def _drop_picked(conn: psycopg.Connection, queue: str, bound: QueueBound, now: float,
                 spared: Sequence[str]) -> list[str]:
    """Cancel the oldest waiting jobs of ``queue`` over its bound, but none of ``spared``."""
    (waiting,) = conn.execute("SELECT coalesce(sum(waiting), 0)::bigint FROM runner_queue "
                              "WHERE queue = %s", (queue,)).fetchone()
    excess = waiting - (bound.max_size or 0)
    if excess <= 0:
        return []
    # The state is tested again on the row itself: a job a worker claims while this waits
    # for its lock has left the waiting jobs (the subquery's snapshot still has it).
    pick = ("id IN (SELECT id FROM runner_job WHERE queue = %s AND state = ANY(%s) "
            "AND NOT (id = ANY(%s)) ORDER BY run_at, seq LIMIT %s) AND state = ANY(%s)")
    params = (queue, _WAITING, list(spared), excess, _WAITING)
    count_where(conn, "cancelled", pick, params)
    reason = (f"dropped: queue '{queue}' was full ({bound.max_size} waiting; on_full "
              "drop_oldest)")
    rows = conn.execute(
        f"UPDATE runner_job SET state = %s, {CANCEL_TIMES}, reason = %s WHERE {pick} "
        f"RETURNING id, run_at, seq", (_CANCELLED, now, reason, *params)).fetchall()
    return [r[0] for r in sorted(rows, key=lambda r: (r[1], r[2]))]


def rearm(conn: psycopg.Connection, job: NewJob, now: float, *, queue_size: int = 0) -> bool:
    """A finished job (same id) → waiting again with new data; False if it is not finished."""
    changed = conn.execute(
        "UPDATE runner_job SET state=%s, task=%s, queue=%s, priority=%s, data=%s, args=%s, "
        f"max_attempts=attempt + %s - {requested_sql()}, run_at=%s, started_at=NULL, "
        "finished_at=NULL, reason=NULL, "
        "crashes=0, lease_owner=NULL, lease_expires_at=NULL, unique_key=%s, event_id=%s, "
        "schedule=%s, concurrency_key=%s WHERE id=%s AND state = ANY(%s)",
        (_SCHEDULED if job.run_at > now else _AVAILABLE, job.task, job.queue, job.priority,
         job.data, job.args, job.max_attempts, job.run_at, job.unique_key, job.event_id,
         job.schedule, job.concurrency_key, job.id, _FINAL)).rowcount == 1
    if changed:
        check_room(conn, [job], queue_size)
    return changed
