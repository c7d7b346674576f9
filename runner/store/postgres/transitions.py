"""The job state machine in PostgreSQL's dialect: every write to ``runner_job``.

The same transitions, in the same states, as :mod:`runner.store.transitions`
(see its diagram); each function runs inside the caller's transaction. What
differs is how: a batch is one statement over arrays (``unnest``), a claim is
one ``UPDATE`` over a ``FOR UPDATE SKIP LOCKED`` pick, so workers on any number
of hosts never wait on each other's rows (the common claim, with the
completions it carries, is one statement of its own: :func:`claim_at_once`),
and jobs written by a worker's transitions notify the database's channel so
idle workers wake at once (a producer's enqueue has its wake-up sent after the
commit, see :mod:`runner.store.postgres.wakeup`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import errors as pg_errors

from runner.errors import QueueFull
from runner.flow import FlowLimits
from runner.store.job_rows import Ack, Claimed, Enqueued, FailureInfo, NewJob, QueueBound
from runner.store.postgres import limits as _limits
from runner.store.postgres.connection import lock_key
from runner.store.postgres.counting import (
    COMPLETED_COLUMNS,
    add_to,
    count_backpressure,
    count_completions,
    count_where,
)
from runner.store.recovery import Orphan
from runner.store.rows import ClaimResult
from runner.store.states import (
    CANCELLABLE,
    DISCARDABLE,
    FINAL,
    RETRYABLE,
    WAITING,
    WAITING_SQL,
    JobState,
)
from runner.store.views import BUCKETS

_AVAILABLE = JobState.AVAILABLE.value
_SCHEDULED = JobState.SCHEDULED.value
_EXECUTING = JobState.EXECUTING.value
_COMPLETED = JobState.COMPLETED.value
_CANCELLED = JobState.CANCELLED.value
_DEAD = JobState.DEAD.value
_WAITING = [s.value for s in WAITING]
_FINAL = [s.value for s in FINAL]
_LIVE = [s.value for s in (*WAITING, JobState.EXECUTING)]
#: The waiting states as literals: a prepared statement's generic plan can then use the
#: partial indexes on them (a parameter matches no index predicate), so the common
#: claim is planned once per connection instead of on every call.
_WAITING_IN = WAITING_SQL


# -- enqueue -----------------------------------------------------------------------


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
        dropped += drop_oldest(conn, queue, (drops or {})[queue], now=created)
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
            raise QueueFull(
                f"queue '{queue}' is full: {already} jobs waiting, its bound is "
                f"{queue_size}; nothing was written (raise [worker] queue_size or "
                "[queues.NAME] max_size, or start more workers)",
                queue=queue, room=max(0, queue_size - already))


def drop_oldest(conn: psycopg.Connection, queue: str, bound: QueueBound, *,
                now: float) -> list[str]:
    """Waiting → ``cancelled`` for the oldest waiting jobs of a queue over its bound.

    Runs after the insert, under the queue's advisory lock the enqueue took, so
    producers on several hosts never leave the queue over its bound. Oldest means
    due the longest (``run_at``, then insertion order); the rows are kept with the
    reason, counted as cancelled and as dropped.
    """
    (waiting,) = conn.execute("SELECT coalesce(sum(waiting), 0)::bigint FROM runner_queue "
                              "WHERE queue = %s", (queue,)).fetchone()
    excess = waiting - (bound.max_size or 0)
    if excess <= 0:
        return []
    pick = ("id IN (SELECT id FROM runner_job WHERE queue = %s AND state = ANY(%s) "
            "ORDER BY run_at, seq LIMIT %s)")
    params = (queue, _WAITING, excess)
    count_where(conn, "cancelled", pick, params)
    reason = (f"dropped: queue '{queue}' was full ({bound.max_size} waiting; on_full "
              "drop_oldest)")
    rows = conn.execute(
        f"UPDATE runner_job SET state = %s, finished_at = %s, reason = %s WHERE {pick} "
        f"RETURNING id, run_at, seq", (_CANCELLED, now, reason, *params)).fetchall()
    count_backpressure(conn, queue, dropped=len(rows))
    return [r[0] for r in sorted(rows, key=lambda r: (r[1], r[2]))]


def rearm(conn: psycopg.Connection, job: NewJob, now: float, *, queue_size: int = 0) -> bool:
    """A finished job (same id) → waiting again with new data; False if it is not finished."""
    changed = conn.execute(
        "UPDATE runner_job SET state=%s, task=%s, queue=%s, priority=%s, data=%s, args=%s, "
        "max_attempts=attempt + %s, run_at=%s, started_at=NULL, finished_at=NULL, reason=NULL, "
        "crashes=0, lease_owner=NULL, lease_expires_at=NULL, unique_key=%s, event_id=%s, "
        "schedule=%s, concurrency_key=%s WHERE id=%s AND state = ANY(%s)",
        (_SCHEDULED if job.run_at > now else _AVAILABLE, job.task, job.queue, job.priority,
         job.data, job.args, job.max_attempts, job.run_at, job.unique_key, job.event_id,
         job.schedule, job.concurrency_key, job.id, _FINAL)).rowcount == 1
    if changed:
        check_room(conn, [job], queue_size)
    return changed


def paused_sets(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
    """(paused queues, paused tasks), read inside a claim's transaction."""
    rows = conn.execute("SELECT kind, name FROM runner_pause WHERE paused = 1").fetchall()
    return ([n for k, n in rows if k == "queue"], [n for k, n in rows if k == "task"])


# -- claim ---------------------------------------------------------------------------


def claim(conn: psycopg.Connection, *, now: float, owner: str, lease_seconds: float,
          want: int, busy: bool, queues: Sequence[str] = (),
          limits: FlowLimits | None = None) -> ClaimResult:
    """Claim up to ``want`` due jobs under a lease in one statement: ``waiting`` → ``executing``.

    Rows another claimer holds are skipped (``SKIP LOCKED``), never waited on.
    A job that was running when a worker died (``crashes > 0``) is claimed
    alone, and only by a process running nothing (``busy`` False). Paused queues
    and tasks are skipped. With ``limits`` (aging, weights, concurrency, rates) the
    choice is :func:`runner.store.postgres.limits.choose`'s.
    """
    queue_sql = " AND queue = ANY(%(queues)s)" if queues else ""
    paused_queues, paused_tasks = paused_sets(conn)
    if paused_queues:
        queue_sql += " AND queue <> ALL(%(paused_queues)s)"
    if paused_tasks:
        queue_sql += " AND task <> ALL(%(paused_tasks)s)"
    params = {"now": now, "owner": owner, "expires": now + lease_seconds,
              "queues": list(queues), "waiting": _WAITING,
              "paused_queues": paused_queues, "paused_tasks": paused_tasks}
    revocations, suspect = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM runner_kv WHERE key LIKE 'r:%%' OR key LIKE 'rt:%%'), "
        "EXISTS (SELECT 1 FROM runner_job WHERE state = ANY(%(waiting)s) "
        f"AND crashes > 0 AND run_at <= %(now)s{queue_sql})", params).fetchone()
    if suspect and busy:
        return ClaimResult([], None, True, revocations)  # let the jobs in flight finish first
    params["want"] = 1 if suspect else want
    if limits is not None and _limits.needs_flow(conn, limits, queue_sql, params):
        choice = _limits.choose(conn, now=now, want=params["want"], queues=queues,
                                limits=limits, suspect=bool(suspect),
                                paused_queues=paused_queues, paused_tasks=paused_tasks)
        rows = []
        if choice.ids:
            rows = conn.execute(
                f"UPDATE runner_job SET state = '{_EXECUTING}', attempt = attempt + 1, "
                f"started_at = %s, finished_at = NULL, lease_owner = %s, "
                f"lease_expires_at = %s WHERE id = ANY(%s) AND state = ANY(%s) "
                f"RETURNING id, data, attempt, task, queue",
                (now, owner, now + lease_seconds, choice.ids, _WAITING)).fetchall()
            rank = {job_id: n for n, job_id in enumerate(choice.ids)}
            rows.sort(key=lambda r: rank[r[0]])
        return ClaimResult([Claimed(r[0], bytes(r[1]), r[2], now) for r in rows],
                           choice.next_due, bool(suspect), bool(revocations),
                           {r[0]: (r[3], r[4]) for r in rows}, choice.full)
    rows = conn.execute(
        f"UPDATE runner_job j SET state = '{_EXECUTING}', attempt = j.attempt + 1, "
        f"started_at = %(now)s, finished_at = NULL, lease_owner = %(owner)s, "
        f"lease_expires_at = %(expires)s WHERE j.id = ANY(ARRAY("
        f"SELECT id FROM runner_job WHERE state = ANY(%(waiting)s) AND run_at <= %(now)s"
        f"{queue_sql} AND crashes {'> 0' if suspect else '= 0'} "
        f"ORDER BY priority DESC, run_at LIMIT %(want)s FOR UPDATE SKIP LOCKED)) "
        f"RETURNING j.id, j.data, j.attempt, j.priority, j.run_at, j.task, j.queue",
        params).fetchall()
    next_due = None
    if not rows:
        next_due = conn.execute(
            f"SELECT min(run_at) FROM runner_job WHERE state = ANY(%(waiting)s){queue_sql}",
            params).fetchone()[0]
    claimed = [Claimed(r[0], bytes(r[1]), r[2], now)
               for r in sorted(rows, key=lambda r: (-r[3], r[4]))]
    return ClaimResult(claimed, next_due, bool(suspect), bool(revocations),
                       {r[0]: (r[5], r[6]) for r in rows})


def claims_at_once(acks: Sequence[Ack], limits: FlowLimits | None) -> bool:
    """Whether :func:`claim_at_once` may serve a claim: no concurrency or rate limit, no
    queue shares, and no finished attempt with results or next steps to write."""
    if limits is not None and (limits.limited or limits.weights):
        return False
    return not any(a.results or a.jobs for a in acks)


def claim_at_once(conn: psycopg.Connection, *, now: float, owner: str, lease_seconds: float,
                  want: int, queues: Sequence[str] = (), acks: Sequence[Ack] = (),
                  limits: FlowLimits | None = None) -> ClaimResult | None:
    """The common claim as one statement (it commits by itself): the finished attempts
    completed and counted, then up to ``want`` due jobs claimed as :func:`claim` would.

    A claim is one round trip instead of eight, and its commit does not wait for
    the disk (``synchronous_commit = off``): those round trips and that wait were
    most of the time from enqueue to start and of the drain. A crash of the
    server itself may lose the last fraction of a second of claims and
    completions (at most three times ``wal_writer_delay``); those jobs are then
    claimed and run again, so delivery stays at least once, and any later commit
    that waits for the disk (an enqueue, a schedule's fire) makes them durable
    with it. Enqueues, unique keys, queue bounds and schedule slots still wait
    for the disk.

    Returns None, having written the completions only, when the full claim
    must decide (a job whose worker died waits, or, with priority aging, the
    waiting jobs have several priorities): the caller then runs :func:`claim`.
    """
    scope = " AND queue = ANY(%(queues)s)" if queues else ""
    # As anti-joins: the planner then keeps reading the claim index in order up to LIMIT.
    scope += (" AND NOT EXISTS (SELECT 1 FROM runner_pause p WHERE p.paused = 1 AND "
              "((p.kind = 'queue' AND p.name = runner_job.queue) OR "
              "(p.kind = 'task' AND p.name = runner_job.task)))")
    levels = "false"
    if limits is not None and not limits.plain:
        # Two reads of the claim index, one from each end (not an aggregate over all).
        levels = " <> ".join(
            f"(SELECT priority FROM runner_job WHERE state IN {_WAITING_IN}{scope} "
            f"ORDER BY priority {order} LIMIT 1)" for order in ("DESC", "ASC"))
        levels = f"({levels})"
    params: dict[str, object] = {
        "now": now, "owner": owner, "expires": now + lease_seconds, "want": want,
        "queues": list(queues)}
    parts = []
    if acks:
        params.update(ack_ids=[a.job_id for a in acks], ack_attempts=[a.attempt for a in acks],
                      ack_started=[a.started_at for a in acks],
                      ack_finished=[a.finished_at for a in acks])
        parts.append(_COMPLETE_AT_ONCE)
    parts.append(
        # Committed without waiting for the disk (see the docstring), set for this
        # statement's own transaction only.
        "flags AS (SELECT set_config('synchronous_commit', 'off', true) AS quick, "
        "EXISTS (SELECT 1 FROM runner_kv WHERE key LIKE 'r:%%' "
        "OR key LIKE 'rt:%%') AS revoked, "
        f"EXISTS (SELECT 1 FROM runner_job WHERE state IN {_WAITING_IN} AND crashes > 0 "
        f"AND run_at <= %(now)s{scope}) AS suspect, {levels} AS levels), "
        f"claimed AS (UPDATE runner_job j SET state = '{_EXECUTING}', attempt = j.attempt + 1, "
        "started_at = %(now)s, finished_at = NULL, lease_owner = %(owner)s, "
        "lease_expires_at = %(expires)s WHERE j.id = ANY(ARRAY(SELECT id FROM runner_job "
        f"WHERE state IN {_WAITING_IN} AND run_at <= %(now)s{scope} AND crashes = 0 "
        "AND NOT (SELECT suspect OR coalesce(levels, false) FROM flags) "
        "ORDER BY priority DESC, run_at LIMIT %(want)s FOR UPDATE SKIP LOCKED)) "
        "RETURNING j.id, j.data, j.attempt, j.priority, j.run_at, j.task, j.queue)")
    rows = conn.execute(
        "WITH " + ", ".join(parts) + " SELECT f.revoked, f.suspect OR coalesce(f.levels, false), "
        "CASE WHEN NOT EXISTS (SELECT 1 FROM claimed) THEN (SELECT min(run_at) FROM runner_job "
        f"WHERE state IN {_WAITING_IN}{scope}) END, "
        "c.id, c.data, c.attempt, c.priority, c.run_at, c.task, c.queue "
        "FROM flags f LEFT JOIN claimed c ON true", params).fetchall()
    revoked, undecided, next_due = rows[0][:3]
    if undecided:
        return None
    picked = sorted((r[3:] for r in rows if r[3] is not None), key=lambda r: (-r[3], r[4]))
    return ClaimResult([Claimed(r[0], bytes(r[1]), r[2], now) for r in picked],
                       next_due if not picked else None, False, bool(revoked),
                       {r[0]: (r[5], r[6]) for r in picked})


_LE = ", ".join(f"count(*) FILTER (WHERE took <= {bound!r})" for bound in BUCKETS)
#: The completion of :func:`complete` and its counting (:func:`count_completions`) as CTEs.
_COMPLETE_AT_ONCE = (
    f"done AS (UPDATE runner_job j SET state = '{_COMPLETED}', "
    f"started_at = coalesce(a.started, j.started_at), finished_at = a.finished, "
    f"lease_owner = NULL, lease_expires_at = NULL, reason = NULL "
    f"FROM unnest(%(ack_ids)s::text[], %(ack_attempts)s::bigint[], %(ack_started)s::float8[], "
    f"%(ack_finished)s::float8[]) AS a(id, attempt, started, finished) "
    f"WHERE j.id = a.id AND j.attempt = a.attempt "
    f"AND j.state IN ('{_EXECUTING}', '{_AVAILABLE}') "
    f"RETURNING j.task, j.queue, CASE WHEN j.started_at IS NOT NULL "
    f"AND j.finished_at > j.started_at THEN j.finished_at - j.started_at ELSE 0 END AS took), "
    f"counted AS (INSERT INTO runner_job_total (task, queue, "
    f"{', '.join(COMPLETED_COLUMNS)}) SELECT task, queue, count(*), sum(took), {_LE} "
    f"FROM done GROUP BY task, queue ORDER BY task, queue {add_to(COMPLETED_COLUMNS)})")


def extend_leases(conn: psycopg.Connection, owner: str, job_ids: Sequence[str], *,
                  expires_at: float) -> None:
    """Keep ``owner``'s running jobs leased until ``expires_at``."""
    conn.execute(
        f"UPDATE runner_job SET lease_expires_at = %s WHERE id = ANY(%s) AND lease_owner = %s "
        f"AND state = '{_EXECUTING}'", (expires_at, list(job_ids), owner))


# -- outcomes of an attempt ----------------------------------------------------------


def complete(conn: psycopg.Connection, acks: Sequence[Ack], channel: str | None = None) -> None:
    """``executing`` → ``completed`` for each finished attempt, with its results and next
    steps, counted; one statement for the batch.

    An attempt handed back meanwhile still counts while no later attempt has
    claimed the job; once one has, the late outcome is not written.
    """
    if not acks:
        return
    rows = conn.execute(
        f"UPDATE runner_job j SET state = '{_COMPLETED}', "
        f"started_at = coalesce(a.started, j.started_at), finished_at = a.finished, "
        f"lease_owner = NULL, lease_expires_at = NULL, reason = NULL "
        f"FROM unnest(%s::text[], %s::bigint[], %s::float8[], %s::float8[]) "
        f"AS a(id, attempt, started, finished) "
        f"WHERE j.id = a.id AND j.attempt = a.attempt "
        f"AND j.state IN ('{_EXECUTING}', '{_AVAILABLE}') "
        f"RETURNING j.id, j.task, j.queue, j.started_at, j.finished_at",
        ([a.job_id for a in acks], [a.attempt for a in acks], [a.started_at for a in acks],
         [a.finished_at for a in acks])).fetchall()
    count_completions(conn, [r[1:] for r in rows])
    written = {r[0] for r in rows}
    for a in acks:
        if (a.results or a.jobs) and a.job_id in written:
            write_follow_ups(conn, a.job_id, a.results, a.jobs, a.finished_at, channel)


def write_follow_ups(conn: psycopg.Connection, job_id: str,
                     results: Sequence[tuple[str, bytes]], jobs: Sequence[NewJob],
                     now: float, channel: str | None = None) -> None:
    """Results and next steps of a settled job, inside the transaction that settles it.

    A next step whose id belongs to a finished job makes that job wait again; one
    whose id is still waiting or running is not written, and the settled job's
    reason says so.
    """
    if results:
        put_results(conn, results)
    for job in jobs:
        try:
            with conn.transaction():
                enqueue(conn, [job], now, channel=channel)
        except pg_errors.UniqueViolation as exc:
            if rearm(conn, job, now):
                notify(conn, channel)
            else:
                conn.execute("UPDATE runner_job SET reason = %s WHERE id = %s",
                             (f"next step {job.id} not enqueued: {exc}"[:500], job_id))


def put_results(conn: psycopg.Connection, results: Sequence[tuple[str, bytes]]) -> None:
    """Store result rows (huey's key/value store), replacing what a key held."""
    latest = dict(results)
    conn.execute(
        "INSERT INTO runner_kv (key, value) SELECT * FROM unnest(%s::text[], %s::bytea[]) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = NULL",
        (list(latest), list(latest.values())))


def _insert_attempt_error(conn: psycopg.Connection, job_id: str, attempt: int,
                          failure: FailureInfo, worker: str | None, now: float) -> None:
    conn.execute(
        "INSERT INTO runner_job_error (job_id, attempt, kind, error_type, message, traceback, "
        "worker, started_at, failed_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
        (job_id, attempt, failure.kind, failure.error_type, failure.message,
         failure.traceback, worker, failure.started_at, now))


def fail(conn: psycopg.Connection, job_id: str, attempt: int, failure: FailureInfo,
         state: JobState, *, worker: str | None, now: float, run_at: float | None,
         reason: str | None, data: bytes | None) -> None:
    """A failed attempt: ``executing`` → ``retrying`` (at ``run_at``) or ``dead``."""
    _insert_attempt_error(conn, job_id, attempt, failure, worker, now)
    count_where(conn, "retried" if state is JobState.RETRYING else "dead", "id = %s", (job_id,))
    conn.execute(
        "UPDATE runner_job SET failures = failures + 1, "
        "first_failed_at = coalesce(first_failed_at, %s), last_failed_at = %s, "
        "error_type = %s, error_message = %s, last_error = %s, state = %s, reason = %s, "
        "run_at = coalesce(%s, run_at), data = coalesce(%s, data), "
        "started_at = coalesce(%s, started_at), finished_at = %s, lease_owner = NULL, "
        "lease_expires_at = NULL WHERE id = %s",
        (now, now, failure.error_type, failure.message[:2000], failure.traceback, state.value,
         reason, run_at, data, failure.started_at, now, job_id))


def cancel_attempt(conn: psycopg.Connection, job_id: str, *, now: float,
                   reason: str | None) -> None:
    """``executing`` → ``cancelled``: revoked or expired when its worker looked."""
    count_where(conn, "cancelled", "id = %s", (job_id,))
    conn.execute(
        f"UPDATE runner_job SET state = '{_CANCELLED}', reason = %s, finished_at = %s, "
        f"lease_owner = NULL, lease_expires_at = NULL WHERE id = %s", (reason, now, job_id))


def hand_back(conn: psycopg.Connection, job_id: str, *, now: float, reason: str | None) -> None:
    """``executing`` → ``available``, the attempt counted (interrupted, or shutdown)."""
    conn.execute(
        f"UPDATE runner_job SET state = '{_AVAILABLE}', reason = %s, run_at = %s, "
        f"lease_owner = NULL, lease_expires_at = NULL WHERE id = %s AND state = '{_EXECUTING}'",
        (reason, now, job_id))


def release(conn: psycopg.Connection, job_id: str, run_at: float) -> None:
    """``executing`` → ``scheduled`` unstarted, due at ``run_at``; the attempt is not used."""
    conn.execute(
        f"UPDATE runner_job SET state = '{_SCHEDULED}', attempt = attempt - 1, run_at = %s, "
        f"started_at = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id = %s",
        (run_at, job_id))


def unclaim(conn: psycopg.Connection, job_ids: Sequence[str]) -> None:
    """``executing`` → ``available`` for jobs claimed but never started (a stopping worker)."""
    conn.execute(
        f"UPDATE runner_job SET state = '{_AVAILABLE}', attempt = attempt - 1, "
        f"lease_owner = NULL, lease_expires_at = NULL, started_at = NULL "
        f"WHERE id = ANY(%s) AND state = '{_EXECUTING}'", (list(job_ids),))


def set_progress(conn: psycopg.Connection, job_id: str, done: float, total: float | None,
                 message: str | None) -> None:
    """Record a running job's progress (no change of state)."""
    conn.execute("UPDATE runner_job SET progress_done = %s, progress_total = %s, "
                 "progress_message = %s WHERE id = %s", (done, total, message, job_id))


# -- recovery ------------------------------------------------------------------------


def lease_owners(conn: psycopg.Connection) -> list[tuple[str | None, float | None]]:
    """(owner, earliest lease expiry) of every owner with a running job."""
    return conn.execute("SELECT lease_owner, min(lease_expires_at) FROM runner_job "
                        f"WHERE state = '{_EXECUTING}' GROUP BY lease_owner").fetchall()


def orphans(conn: psycopg.Connection, *, now: float, dead_owners: Sequence[str]) -> list[Orphan]:
    """Running jobs whose lease expired before ``now`` or whose owner is in ``dead_owners``.

    Locked (``FOR UPDATE SKIP LOCKED``) so two recovering workers never charge
    one crash twice.
    """
    rows = conn.execute(
        f"SELECT id, lease_owner, attempt, crashes, started_at FROM runner_job "
        f"WHERE state = '{_EXECUTING}' AND (lease_expires_at < %s OR lease_owner = ANY(%s)) "
        f"FOR UPDATE SKIP LOCKED", (now, list(dead_owners))).fetchall()
    return [Orphan(*row) for row in rows]


def running_attempt(conn: psycopg.Connection, job_id: str, attempt: int,
                    owner: str) -> Orphan | None:
    """The job if that attempt still runs under ``owner`` (to charge it a crash), else None."""
    row = conn.execute(
        f"SELECT id, lease_owner, attempt, crashes, started_at FROM runner_job WHERE id = %s "
        f"AND attempt = %s AND state = '{_EXECUTING}' AND lease_owner = %s FOR UPDATE",
        (job_id, attempt, owner)).fetchone()
    return None if row is None else Orphan(*row)


def requeue_unstarted(conn: psycopg.Connection, job_id: str, *, now: float) -> None:
    """``executing`` → ``available``, the attempt not used: its worker died before starting it."""
    conn.execute(
        f"UPDATE runner_job SET state = '{_AVAILABLE}', attempt = attempt - 1, run_at = %s, "
        f"started_at = NULL, reason = 'claimed by a worker that died before starting it; "
        f"requeued', lease_owner = NULL, lease_expires_at = NULL WHERE id = %s", (now, job_id))


def charge_crash(conn: psycopg.Connection, orphan: Orphan, message: str, *, crash_limit: int,
                 error_type: str, now: float) -> bool:
    """Charge a crash to a running attempt: requeued, or ``dead`` at ``crash_limit`` (True)."""
    crashes = orphan.crashes + 1
    _insert_attempt_error(conn, orphan.id, orphan.attempt,
                          FailureInfo("crash", error_type, message, "", orphan.started_at),
                          orphan.owner, now)
    if crash_limit and crashes >= crash_limit:
        reason = ("worker died" if error_type == "WorkerDied" else "stuck") + \
            f" ({crashes} times while running it)"
        count_where(conn, "dead", "id = %s", (orphan.id,))
        conn.execute(
            f"UPDATE runner_job SET state = '{_DEAD}', crashes = %s, finished_at = %s, "
            f"reason = %s, error_type = %s, error_message = %s, lease_owner = NULL, "
            f"lease_expires_at = NULL WHERE id = %s",
            (crashes, now, reason, error_type, message, orphan.id))
        return True
    reason = "worker died; requeued" if error_type == "WorkerDied" else "stuck; requeued"
    count_where(conn, "retried", "id = %s", (orphan.id,))
    conn.execute(
        f"UPDATE runner_job SET state = '{_AVAILABLE}', crashes = %s, run_at = %s, reason = %s, "
        f"lease_owner = NULL, lease_expires_at = NULL WHERE id = %s",
        (crashes, now, reason, orphan.id))
    return False


# -- by hand and by huey's flush -----------------------------------------------------


def retry_now(conn: psycopg.Connection, job_ids: Sequence[str], *, now: float,
              reason: str = "retried by hand") -> int:
    """Finished or retrying jobs → ``available`` for one more attempt; returns rows changed."""
    return conn.execute(
        f"UPDATE runner_job SET state = '{_AVAILABLE}', run_at = %s, finished_at = NULL, "
        f"max_attempts = attempt + 1, reason = %s, crashes = 0 "
        f"WHERE id = ANY(%s) AND state = ANY(%s)",
        (now, reason, list(job_ids), [s.value for s in RETRYABLE])).rowcount


def cancel(conn: psycopg.Connection, job_ids: Sequence[str], *, now: float,
           discard: bool = False, reason: str | None = None) -> int:
    """Jobs that have not started (or, ``discard``, waiting or dead) → ``cancelled``."""
    states = [s.value for s in (DISCARDABLE if discard else CANCELLABLE)]
    reason = reason or ("discarded by hand" if discard else "cancelled by hand")
    count_where(conn, "cancelled", "id = ANY(%s) AND state = ANY(%s)", (list(job_ids), states))
    return conn.execute(
        f"UPDATE runner_job SET state = '{_CANCELLED}', finished_at = %s, reason = %s "
        f"WHERE id = ANY(%s) AND state = ANY(%s)",
        (now, reason, list(job_ids), states)).rowcount


def by_hand_in_bulk(conn: psycopg.Connection, verb: str, where: str, params: Sequence[object],
                    *, after: int, up_to: int, limit: int, now: float,
                    channel: str | None = None) -> list[int]:
    """Retry now, discard or cancel the next ``limit`` jobs of a set, taken by ``seq``.

    ``where`` selects the set; jobs after ``after`` up to ``up_to`` are taken.
    Returns the ``seq`` of the jobs changed.
    """
    pick = (f"SELECT seq FROM runner_job{where} AND seq > %s AND seq <= %s "
            f"ORDER BY seq LIMIT {int(limit)}")
    if verb == "retry":
        change = (f"state = '{_AVAILABLE}', run_at = %s, finished_at = NULL, "
                  f"max_attempts = attempt + 1, reason = 'retried by hand', crashes = 0")
    else:
        reason = "discarded by hand" if verb == "discard" else "cancelled by hand"
        change = f"state = '{_CANCELLED}', finished_at = %s, reason = '{reason}'"
    chosen = (*params, after, up_to)
    if verb != "retry":
        count_where(conn, "cancelled", f"seq IN ({pick})", chosen)
    notify(conn, channel)
    return [r[0] for r in conn.execute(
        f"UPDATE runner_job SET {change} WHERE seq IN ({pick}) RETURNING seq",
        (now, *chosen)).fetchall()]


def state_of(conn: psycopg.Connection, job_id: str) -> JobState | None:
    """A job's state inside a transaction (locked), or None when there is no such job."""
    row = conn.execute("SELECT state FROM runner_job WHERE id = %s FOR UPDATE",
                       (job_id,)).fetchone()
    return None if row is None else JobState(row[0])


def cancel_waiting(conn: psycopg.Connection, *, now: float, reason: str, due: bool) -> int:
    """Waiting jobs due by ``now`` (or, ``due`` False, due later) → ``cancelled``."""
    compare = "<=" if due else ">"
    count_where(conn, "cancelled", f"state = ANY(%s) AND run_at {compare} %s", (_WAITING, now))
    return conn.execute(
        f"UPDATE runner_job SET state = '{_CANCELLED}', reason = %s, finished_at = %s "
        f"WHERE state = ANY(%s) AND run_at {compare} %s", (reason, now, _WAITING, now)).rowcount


def settle_dispatch(conn: psycopg.Connection, job_ids: Sequence[str], *, now: float) -> None:
    """Waiting dispatch jobs whose event another dispatch job fanned out → ``completed``."""
    conn.execute(
        f"UPDATE runner_job SET state = '{_COMPLETED}', finished_at = %s, "
        f"reason = 'event dispatched by another dispatch job' WHERE id = ANY(%s) "
        f"AND state = ANY(%s)", (now, list(job_ids), _WAITING))


# -- prune ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Prunable:
    """Finished jobs retention deletes: completed or cancelled, and dead, before a time each."""

    completed_before: float
    dead_before: float

    def where(self) -> tuple[str, tuple]:
        return (f"(state IN ('{_COMPLETED}', '{_CANCELLED}') AND finished_at < %s) OR "
                f"(state = '{_DEAD}' AND finished_at < %s)",
                (self.completed_before, self.dead_before))


def prune(conn: psycopg.Connection, old: Prunable, *, limit: int) -> tuple[int, int]:
    """Delete up to ``limit`` old finished jobs with their errors, logs and results.

    Returns (jobs deleted, their log records deleted).
    """
    where, params = old.where()
    ids = [r[0] for r in conn.execute(
        f"SELECT id FROM runner_job WHERE {where} LIMIT %s FOR UPDATE SKIP LOCKED",
        (*params, limit)).fetchall()]
    logs = 0
    if ids:
        conn.execute("DELETE FROM runner_job_error WHERE job_id = ANY(%s)", (ids,))
        logs = conn.execute("DELETE FROM runner_log WHERE job_id = ANY(%s)", (ids,)).rowcount
        conn.execute("DELETE FROM runner_kv WHERE key = ANY(%s)", (ids,))
        conn.execute("DELETE FROM runner_job WHERE id = ANY(%s)", (ids,))
    return len(ids), logs
