"""The job state machine: every write to ``runner_job``, one named transition each.

::

    enqueue, rearm ──> available | scheduled ──claim──> executing ──complete──> completed
                     ^                              │ ├─retry──> retrying ──(due)──> claim
                     │                              │ ├─bury───> dead
                     │                              │ ├─cancel_attempt──> cancelled
                     └──hand_back / unclaim / charge_crash (lease expired, worker gone)
    waiting ──cancel / discard──> cancelled     final ──retry_now──> available
    final (old) ──prune──> deleted

Each function runs inside the caller's write transaction (``Database.write``),
so a caller can join a transition with its other writes (an event with its
dispatch job, a schedule slot with its job). This module and
:mod:`runner.store.states` are the only places that spell a state; the hot
statements (claim, complete, enqueue) are tuned for SQLite and kept as written.
"""

from __future__ import annotations

import functools
import itertools
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runner.errors import QueueFull
from runner.flow import FlowLimits
from runner.store.job_rows import Ack, Claimed, Enqueued, FailureInfo, NewJob, QueueBound
from runner.store.rows import ClaimResult  # noqa: F401 - re-exported
from runner.store.sqlite.conditions import WAITING_WHERE
from runner.store.sqlite.counters import (
    count_backpressure,
    count_completions,
    count_enqueued,
    count_where,
)
from runner.store.sqlite.limits import Taken, choose_limited
from runner.store.sqlite.pauses import PAUSED_SQL, claim_filter, paused_sets
from runner.store.sqlite.unique_keys import unique_duplicates
from runner.store.states import (
    CANCELLABLE,
    DISCARDABLE,
    RETRYABLE,
    JobState,
    sql_in,
)

logger = logging.getLogger(__name__)


# -- enqueue -----------------------------------------------------------------------


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
    if len(jobs) == 1 and jobs[0].unique_key is None and not queue_size and not bounds:
        # The common single enqueue, nothing to look up first: the row and its counts.
        _insert_one(conn, jobs[0], created)
        count_enqueued(conn, jobs)
        return Enqueued({})
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
        dropped += drop_oldest(conn, queue, bound, now=created)
    return Enqueued(duplicates, tuple(dropped))


def _insert_one(conn: sqlite3.Connection, j: NewJob, created: float) -> None:
    row = (j.id, j.task, j.queue, j.priority,
           "scheduled" if j.run_at > created else "available", j.data, j.args,
           j.max_attempts, j.run_at, created)
    optional = (j.unique_key, j.event_id, j.schedule, j.concurrency_key)
    if optional == (None, None, None, None):
        # Most jobs: the NULL columns left out, as insert_jobs does (each None bound
        # goes through sqlite3's adapter lookup, see there).
        conn.execute(_insert_many(1, False), row)
    else:
        conn.execute(_insert_many(1, True), row + optional)


_JOB_COLUMNS = ("id", "task", "queue", "priority", "state", "data", "args", "max_attempts",
                "run_at", "created_at")
#: Columns most jobs leave NULL.
_OPTIONAL = ("unique_key", "event_id", "schedule", "concurrency_key")

#: Rows per statement: 64 x 14 values stays under 999, SQLite's limit on variables
#: before 3.32.
_ROWS_PER_INSERT = 64


@functools.cache
def _insert_many(count: int, optional: bool) -> str:
    """One INSERT of ``count`` rows, with or without the optional columns."""
    columns = _JOB_COLUMNS + _OPTIONAL if optional else _JOB_COLUMNS
    values = f"({','.join('?' * len(columns))})"
    return (f"INSERT INTO runner_job ({', '.join(columns)}) VALUES "
            + ",".join([values] * count))


def insert_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], created: float) -> None:
    """Insert new jobs (``scheduled`` when ``run_at`` is after ``created``, else
    ``available``), :data:`_ROWS_PER_INSERT` rows per statement.

    A batch used to run the one-row statement through ``executemany``.
    Measured with callgrind over a 50,000-job ``map()``, two things cost more
    than SQLite's own insert:

    * each run of a statement opens and closes a cursor on the table and each
      of its indexes: a statement of 64 rows opens them once (SQLite's
      instructions per row fall from 44,000 to 17,000);
    * Python's ``sqlite3`` passes ``None`` and ``bytes`` values through its
      adapter lookup, which raises and formats an AttributeError inside for
      each one (about 3,000 instructions a value, more than SQLite spends on
      it). Columns NULL in every row of the batch are left out of the
      statement (they default to NULL), and the payload goes in as a
      ``bytearray``, a type the module binds directly (as the same BLOB).

    The last rows of a batch go in statements of 32, 16, ..., 1 rows, so a
    connection caches at most 14 statements of this kind.
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
    chain = itertools.chain.from_iterable
    start, count, size = 0, len(rows), _ROWS_PER_INSERT
    while start < count:
        while count - start < size:
            size //= 2
        sql = _insert_many(size, optional)
        while count - start >= size:
            conn.execute(sql, tuple(chain(rows[start:start + size])))
            start += size


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
        raise QueueFull(
            f"queue '{queue}' is full: {waiting} jobs waiting, queue_size is "
            f"{bound.max_size}; nothing was written (raise [worker] queue_size or "
            f"[queues.{queue}] max_size, or start more workers)",
            queue=queue, room=max(0, bound.max_size - waiting))
    return trim


def drop_oldest(conn: sqlite3.Connection, queue: str, bound: QueueBound, *,
                now: float) -> list[str]:
    """Waiting → ``cancelled`` for the oldest waiting jobs of a queue over its bound.

    Oldest means due the longest (``run_at``, then insertion order). The rows are
    kept, with the reason, and counted as cancelled and as dropped.
    """
    (waiting,) = conn.execute("SELECT waiting FROM runner_queue WHERE queue = ?",
                              (queue,)).fetchone()
    excess = waiting - bound.max_size
    if excess <= 0:
        return []
    pick = (f"id IN (SELECT id FROM runner_job INDEXED BY runner_job_queue_claim "
            f"WHERE queue = ? AND {WAITING_WHERE} ORDER BY run_at, rowid LIMIT ?)")
    count_where(conn, "cancelled", pick, (queue, excess))
    reason = (f"dropped: queue '{queue}' was full ({bound.max_size} waiting; on_full "
              "drop_oldest)")
    ids = [r[0] for r in conn.execute(
        f"UPDATE runner_job SET state='cancelled', finished_at=?, reason=? WHERE {pick} "
        f"RETURNING id", (now, reason, queue, excess)).fetchall()]
    count_backpressure(conn, queue, dropped=len(ids))
    return ids


def rearm(conn: sqlite3.Connection, job: NewJob, now: float, *, queue_size: int = 0) -> bool:
    """A finished job (same id) → waiting again with new data; False if it is not finished.

    This is what enqueueing a huey Task object a second time means: it runs again.
    The row keeps its history (attempts, errors); its attempt budget starts afresh.
    """
    check_room(conn, [job], queue_size)
    return conn.execute(
        "UPDATE runner_job SET state=?, task=?, queue=?, priority=?, data=?, args=?, "
        "max_attempts=attempt + ?, run_at=?, started_at=NULL, finished_at=NULL, reason=NULL, "
        "crashes=0, lease_owner=NULL, lease_expires_at=NULL, unique_key=?, event_id=?, "
        "schedule=?, concurrency_key=? WHERE id=? AND state IN ('completed','dead','cancelled')",
        ("scheduled" if job.run_at > now else "available", job.task, job.queue, job.priority,
         job.data, job.args, job.max_attempts, job.run_at, job.unique_key, job.event_id,
         job.schedule, job.concurrency_key, job.id)).rowcount == 1


# -- claim ---------------------------------------------------------------------------


def claim(conn: sqlite3.Connection, *, now: float, owner: str, lease_seconds: float,
          want: int, busy: bool, queues: Sequence[str] = (),
          limits: FlowLimits | None = None) -> ClaimResult:
    """Claim up to ``want`` due jobs under a lease: ``waiting`` → ``executing``.

    A job that was running when a worker died (``crashes > 0``) is a suspect: it
    is claimed alone, and only when this process runs nothing (``busy`` False),
    so a poison job's next crash is counted against it and not its neighbours.
    With ``limits`` (weights, concurrency, rates, aging) the choice is
    :func:`runner.store.sqlite.limits.choose_limited`'s; without, one statement takes
    the best priorities first.
    """
    queue_sql, params = _queue_filter(queues)
    flow = limits is not None and bool(limits.limited or limits.weights)
    aging = limits is not None and not flow and limits.aging > 0
    revocations, any_paused, suspect, *spread = conn.execute(
        _look_sql(queue_sql, aging), (now, *params, *(params * 2 if aging else ()))).fetchone()
    paused: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    if any_paused:
        paused = paused_sets(conn)
        paused_sql, paused_params = claim_filter(*paused)
        queue_sql, params = queue_sql + paused_sql, (*params, *paused_params)
    if suspect and busy:
        return ClaimResult([], None, True, bool(revocations))  # let the jobs in flight finish
    revocations = bool(revocations)
    # Aging alone changes nothing while every waiting job has one priority (oldest
    # due first either way): then the one-statement claim below serves.
    flow = flow or (aging and spread[0] is not None and spread[1] < spread[0])
    claim_sql = (
        f"UPDATE runner_job SET state='executing', attempt=attempt+1, started_at=?, "
        f"finished_at=NULL, lease_owner=?, lease_expires_at=? WHERE rowid IN ("
        f"SELECT rowid FROM runner_job INDEXED BY runner_job_claim WHERE "
        f"{WAITING_WHERE} AND run_at <= ?{queue_sql} AND crashes {{}} "
        f"ORDER BY priority DESC, run_at LIMIT ?) "
        f"RETURNING id, data, attempt, priority, run_at, task, queue")
    lease = (now, owner, now + lease_seconds, now, *params)
    crashes = "> 0" if suspect else "= 0"
    if flow:
        assert limits is not None
        choice = choose_limited(conn, now=now, want=1 if suspect else want, queues=queues,
                                limits=limits, crashes=crashes, paused=paused,
                                take=functools.partial(claim_rowids, conn, lease[:3]))
        ids, rows = choice.ids, []
        if isinstance(choice, Taken):
            rows = choice.rows
        elif ids:
            rows = claim_rowids(conn, lease[:3], ",".join("?" * len(ids)), ids,
                                "id, data, attempt, priority, run_at, task, queue, rowid")
            rank = {rowid: n for n, rowid in enumerate(ids)}
            rows.sort(key=lambda r: rank[r[7]])
        next_due = choice.next_due
        if not rows:  # a hand-edited run_at that is not a number is never due: bury it
            (latest,) = conn.execute(
                f"SELECT max(run_at) FROM runner_job INDEXED BY runner_job_queue_claim "
                f"WHERE {WAITING_WHERE}{queue_sql}", params).fetchone()
            if not isinstance(latest, (int, float, type(None))):
                bury_bad_run_at(conn, now)
                next_due = now
        claimed = [Claimed(r[0], r[1], r[2], now) for r in rows]
        return ClaimResult(claimed, next_due, bool(suspect), revocations,
                           {r[0]: (r[5], r[6]) for r in rows}, choice.full)
    rows = conn.execute(claim_sql.format(crashes), (*lease, 1 if suspect else want)).fetchall()
    next_due = None
    if not rows:
        found = conn.execute(
            f"SELECT min(run_at), max(run_at) FROM runner_job INDEXED BY "
            f"runner_job_queue_claim WHERE {WAITING_WHERE}{queue_sql}",
            params).fetchone()
        next_due = found[0] if found else None
        if found and not isinstance(found[1], (int, float, type(None))):
            next_due = bury_bad_run_at(conn, now)
    claimed = [Claimed(r[0], r[1], r[2], now) for r in sorted(rows, key=lambda r: (-r[3], r[4]))]
    return ClaimResult(claimed, next_due, bool(suspect), revocations,
                       {r[0]: (r[5], r[6]) for r in rows})


def claim_rowids(conn: sqlite3.Connection, lease: tuple[float, str, float], select: str,
                 params: Sequence[object], returning: str) -> list[tuple]:
    """The waiting rows ``select`` picks (their rowids) → ``executing`` under ``lease``
    (started_at, owner, expiry); returns the ``returning`` columns of each."""
    return conn.execute(
        f"UPDATE runner_job SET state='executing', attempt=attempt+1, started_at=?, "
        f"finished_at=NULL, lease_owner=?, lease_expires_at=? WHERE rowid IN ({select}) "
        f"RETURNING {returning}", (*lease, *params)).fetchall()


#: What a claim reads before it takes jobs, in one statement: whether any revocation
#: exists (huey's revocation checks are skipped while none does), whether anything is
#: paused (only then are the pauses read), and whether a suspect is due. A suspect
#: of a paused queue or task does not count, so its test leaves them out in SQL.
_LOOK = (
    "SELECT EXISTS (SELECT 1 FROM runner_kv WHERE (key >= 'r:' AND key < 'r;') "
    "OR (key >= 'rt:' AND key < 'rt;')), "
    "EXISTS (SELECT 1 FROM runner_pause WHERE paused = 1), "
    f"EXISTS (SELECT 1 FROM runner_job INDEXED BY runner_job_suspect WHERE "
    f"{WAITING_WHERE} AND crashes > 0 AND run_at <= ?{{queues}}{PAUSED_SQL})")
#: With aging on and no other limit: the highest and lowest priority waiting (in this
#: worker's queues, paused ones left out), read by the claim index from either end.
_SPREAD = (
    f", (SELECT max(priority) FROM runner_job INDEXED BY runner_job_claim WHERE "
    f"{WAITING_WHERE}{{queues}}{PAUSED_SQL}), "
    f"(SELECT min(priority) FROM runner_job INDEXED BY runner_job_claim WHERE "
    f"{WAITING_WHERE}{{queues}}{PAUSED_SQL})")


@functools.lru_cache(maxsize=64)
def _look_sql(queue_sql: str, aging: bool) -> str:
    return (_LOOK + (_SPREAD if aging else "")).format(queues=queue_sql)


def bury_bad_run_at(conn: sqlite3.Connection, now: float) -> float | None:
    """Waiting jobs whose ``run_at`` is not a number (a hand edit) → ``dead``, once.

    SQLite sorts text after every number, so such a row is never due and would
    otherwise come back as the next due time on every poll. Returns the next
    due time among the rows left.
    """
    bad = conn.execute(
        f"UPDATE runner_job SET state='dead', finished_at=?, "
        f"reason='run_at is not a number: ' || quote(run_at) WHERE {WAITING_WHERE} "
        f"AND typeof(run_at) NOT IN ('real', 'integer') RETURNING id, reason", (now,)).fetchall()
    for job_id, reason in bad:
        logger.error("job %s goes to dead: %s", job_id, reason)
    (next_due,) = conn.execute(
        f"SELECT min(run_at) FROM runner_job WHERE {WAITING_WHERE}").fetchone()
    return next_due


def _queue_filter(queues: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    if not queues:
        return "", ()
    return f" AND queue IN ({','.join('?' * len(queues))})", tuple(queues)


def extend_leases(conn: sqlite3.Connection, owner: str, job_ids: Sequence[str], *,
                  expires_at: float) -> None:
    """Keep ``owner``'s running jobs leased until ``expires_at``."""
    conn.executemany(
        "UPDATE runner_job SET lease_expires_at=? WHERE id=? AND lease_owner=? "
        "AND state='executing'",
        [(expires_at, job_id, owner) for job_id in job_ids])


# -- outcomes of an attempt ----------------------------------------------------------


_ACK_SQL = (
    "UPDATE runner_job SET state='completed', started_at=coalesce(?, started_at), "
    "finished_at=?, lease_owner=NULL, lease_expires_at=NULL, reason=NULL "
    "WHERE id=? AND attempt=? AND state IN ('executing','available')")


def complete(conn: sqlite3.Connection, acks: Sequence[Ack],
             labels: Mapping[str, tuple[str, str]] | None = None) -> None:
    """``executing`` → ``completed`` for each finished attempt, with its results and next
    steps, and count them.

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
            enqueue(conn, [job], now)
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK TO follow_up")
            if not rearm(conn, job, now):
                conn.execute("UPDATE runner_job SET reason=? WHERE id=?",
                             (f"next step {job.id} not enqueued: {exc}"[:500], job_id))
        conn.execute("RELEASE follow_up")


def record_failure(conn: sqlite3.Connection, job_id: str, attempt: int,
                   failure: FailureInfo, worker: str | None, now: float) -> None:
    """Add a failed attempt to the job's timeline and its last-error columns."""
    _insert_attempt_error(conn, job_id, attempt, failure, worker, now)
    conn.execute(
        "UPDATE runner_job SET failures=failures+1, first_failed_at=coalesce(first_failed_at, ?),"
        " last_failed_at=?, error_type=?, error_message=?, last_error=? WHERE id=?",
        (now, now, failure.error_type, failure.message[:2000], failure.traceback, job_id))


def _insert_attempt_error(conn: sqlite3.Connection, job_id: str, attempt: int,
                          failure: FailureInfo, worker: str | None, now: float) -> None:
    conn.execute(
        "INSERT INTO runner_job_error (job_id, attempt, kind, error_type, message, traceback, "
        "worker, started_at, failed_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (job_id, attempt, failure.kind, failure.error_type, failure.message,
         failure.traceback, worker, failure.started_at, now))


def retry(conn: sqlite3.Connection, job_id: str, attempt: int, failure: FailureInfo, *,
          worker: str | None, now: float, run_at: float | None, reason: str | None,
          data: bytes | None = None, results: Sequence[tuple[str, bytes]] = (),
          jobs: Sequence[NewJob] = ()) -> None:
    """``executing`` → ``retrying``: the attempt failed; the next one is due at ``run_at``.

    ``data`` is the task as serialized for its next attempt (huey counts retries in it).
    """
    _fail(conn, job_id, attempt, failure, JobState.RETRYING, worker=worker, now=now,
          run_at=run_at, reason=reason, data=data)
    write_follow_ups(conn, job_id, results, jobs, now)


def bury(conn: sqlite3.Connection, job_id: str, attempt: int, failure: FailureInfo, *,
         worker: str | None, now: float, reason: str | None,
         results: Sequence[tuple[str, bytes]] = (), jobs: Sequence[NewJob] = ()) -> None:
    """``executing`` → ``dead``: failed for good (retries used up, Fatal, unreadable, unknown).

    ``results`` (the error huey stores for each pipeline step) and ``jobs`` (an
    error handler) are written in the same step.
    """
    _fail(conn, job_id, attempt, failure, JobState.DEAD, worker=worker, now=now, run_at=None,
          reason=reason, data=None)
    write_follow_ups(conn, job_id, results, jobs, now)


def _fail(conn: sqlite3.Connection, job_id: str, attempt: int, failure: FailureInfo,
          state: JobState, *, worker: str | None, now: float, run_at: float | None,
          reason: str | None, data: bytes | None) -> None:
    record_failure(conn, job_id, attempt, failure, worker, now)
    count_where(conn, "retried" if state is JobState.RETRYING else "dead", "id = ?", (job_id,))
    conn.execute(
        "UPDATE runner_job SET state=?, reason=?, run_at=coalesce(?, run_at), "
        "data=coalesce(?, data), started_at=coalesce(?, started_at), finished_at=?, "
        "lease_owner=NULL, lease_expires_at=NULL WHERE id=?",
        (state.value, reason, run_at, data, failure.started_at, now, job_id))


def cancel_attempt(conn: sqlite3.Connection, job_id: str, *, now: float,
                   reason: str | None) -> None:
    """``executing`` → ``cancelled``: revoked or expired when its worker looked."""
    count_where(conn, "cancelled", "id = ?", (job_id,))
    conn.execute(
        "UPDATE runner_job SET state='cancelled', reason=?, finished_at=?, lease_owner=NULL, "
        "lease_expires_at=NULL WHERE id=?", (reason, now, job_id))


def hand_back(conn: sqlite3.Connection, job_id: str, *, now: float,
              reason: str | None) -> None:
    """``executing`` → ``available``, the attempt counted (interrupted, or shutdown)."""
    conn.execute(
        "UPDATE runner_job SET state='available', reason=?, run_at=?, "
        "lease_owner=NULL, lease_expires_at=NULL WHERE id=? AND state='executing'",
        (reason, now, job_id))


def release(conn: sqlite3.Connection, job_id: str, run_at: float) -> None:
    """``executing`` → ``scheduled`` unstarted, due at ``run_at``; the attempt is not used."""
    conn.execute(
        "UPDATE runner_job SET state='scheduled', attempt=attempt-1, run_at=?, "
        "started_at=NULL, lease_owner=NULL, lease_expires_at=NULL WHERE id=?",
        (run_at, job_id))


def unclaim(conn: sqlite3.Connection, job_ids: Sequence[str]) -> None:
    """``executing`` → ``available`` for jobs claimed but never started (a stopping worker)."""
    conn.executemany(
        "UPDATE runner_job SET state='available', attempt=attempt-1, lease_owner=NULL, "
        "lease_expires_at=NULL, started_at=NULL WHERE id=? AND state='executing'",
        [(job_id,) for job_id in job_ids])


def set_progress(conn: sqlite3.Connection, job_id: str, done: float, total: float | None,
                 message: str | None) -> None:
    """Record a running job's progress (no change of state)."""
    conn.execute(
        "UPDATE runner_job SET progress_done=?, progress_total=?, progress_message=? "
        "WHERE id=?", (done, total, message, job_id))


# -- recovery ------------------------------------------------------------------------


@dataclass(frozen=True)
class Orphan:
    """A job left ``executing`` by a worker that is gone (or whose lease expired)."""

    id: str
    owner: str | None
    attempt: int
    crashes: int
    started_at: float | None


def orphans(conn: sqlite3.Connection, *, now: float, dead_owners: Sequence[str]) -> list[Orphan]:
    """Running jobs whose lease expired before ``now`` or whose owner is in ``dead_owners``."""
    marks = ",".join("?" * len(dead_owners))
    who = f" OR lease_owner IN ({marks})" if dead_owners else ""
    rows = conn.execute(
        f"SELECT id, lease_owner, attempt, crashes, started_at FROM runner_job "
        f"WHERE state='executing' AND (lease_expires_at < ?{who})",
        (now, *dead_owners)).fetchall()
    return [Orphan(*row) for row in rows]


def lease_owners(conn: sqlite3.Connection) -> list[tuple[str | None, float | None]]:
    """(owner, earliest lease expiry) of every owner with a running job."""
    return conn.execute("SELECT lease_owner, min(lease_expires_at) FROM runner_job "
                        "WHERE state='executing' GROUP BY lease_owner").fetchall()


def running_attempt(conn: sqlite3.Connection, job_id: str, attempt: int,
                    owner: str) -> Orphan | None:
    """The job if that attempt still runs under ``owner`` (to charge it a crash), else None."""
    row = conn.execute(
        "SELECT id, lease_owner, attempt, crashes, started_at FROM runner_job WHERE id=? "
        "AND attempt=? AND state='executing' AND lease_owner=?",
        (job_id, attempt, owner)).fetchone()
    return None if row is None else Orphan(*row)


def requeue_unstarted(conn: sqlite3.Connection, job_id: str, *, now: float) -> None:
    """``executing`` → ``available``, the attempt not used: its worker died before starting it."""
    conn.execute(
        "UPDATE runner_job SET state='available', attempt=attempt-1, run_at=?, "
        "started_at=NULL, reason='claimed by a worker that died before starting "
        "it; requeued', lease_owner=NULL, lease_expires_at=NULL WHERE id=?", (now, job_id))


def charge_crash(conn: sqlite3.Connection, orphan: Orphan, message: str, *, crash_limit: int,
                 error_type: str, now: float) -> bool:
    """Charge a crash to a running attempt (its worker died, or it is stuck).

    ``executing`` → ``available`` (requeued), or ``dead`` once it reached
    ``crash_limit`` crashes; True when dead. The crash is recorded in the
    timeline only: the job's failure count and last error stay those of real failures.
    """
    crashes = orphan.crashes + 1
    _insert_attempt_error(conn, orphan.id, orphan.attempt,
                          FailureInfo("crash", error_type, message, "", orphan.started_at),
                          orphan.owner, now)
    if crash_limit and crashes >= crash_limit:
        reason = ("worker died" if error_type == "WorkerDied" else "stuck") + \
            f" ({crashes} times while running it)"
        count_where(conn, "dead", "id = ?", (orphan.id,))
        conn.execute(
            "UPDATE runner_job SET state='dead', crashes=?, finished_at=?, reason=?, "
            "error_type=?, error_message=?, lease_owner=NULL, lease_expires_at=NULL "
            "WHERE id=?", (crashes, now, reason, error_type, message, orphan.id))
        return True
    reason = "worker died; requeued" if error_type == "WorkerDied" else "stuck; requeued"
    count_where(conn, "retried", "id = ?", (orphan.id,))
    conn.execute(
        "UPDATE runner_job SET state='available', crashes=?, run_at=?, reason=?, "
        "lease_owner=NULL, lease_expires_at=NULL WHERE id=?", (crashes, now, reason, orphan.id))
    return False


# -- by hand (CLI, dashboard) and by huey's flush ------------------------------------


def retry_now(conn: sqlite3.Connection, job_id: str, *, now: float,
              reason: str = "retried by hand") -> int:
    """A finished or retrying job → ``available`` for one more attempt; returns rows changed."""
    return conn.execute(
        f"UPDATE runner_job SET state='available', run_at=?, finished_at=NULL, "
        f"max_attempts=attempt + 1, "
        f"reason=?, crashes=0 WHERE id=? AND state IN {sql_in(RETRYABLE)}",
        (now, reason, job_id)).rowcount


def by_hand_in_bulk(conn: sqlite3.Connection, verb: str, where: str, params: Sequence[object],
                    *, after: int, up_to: int, limit: int, now: float) -> list[int]:
    """Retry now (``verb`` "retry"), discard or cancel the next ``limit`` jobs of a set.

    ``where`` selects the set (its states among those the verb accepts); jobs are
    taken by rowid after ``after`` up to ``up_to``. Returns the rowids changed.
    """
    pick = (f"SELECT rowid FROM runner_job{where} AND rowid > ? AND rowid <= ? "
            f"ORDER BY rowid LIMIT {int(limit)}")
    if verb == "retry":
        change = ("state='available', run_at=?, finished_at=NULL, max_attempts=attempt + 1, "
                  "reason='retried by hand', crashes=0")
    else:
        reason = "discarded by hand" if verb == "discard" else "cancelled by hand"
        change = f"state='cancelled', finished_at=?, reason='{reason}'"
    chosen = (*params, after, up_to)
    if verb != "retry":  # the same rows the update picks, in this transaction
        count_where(conn, "cancelled", f"rowid IN ({pick})", chosen)
    return [r[0] for r in conn.execute(
        f"UPDATE runner_job SET {change} WHERE rowid IN ({pick}) RETURNING rowid",
        (now, *chosen)).fetchall()]


def state_of(conn: sqlite3.Connection, job_id: str) -> JobState | None:
    """A job's state inside a transaction, or None when there is no such job."""
    row = conn.execute("SELECT state FROM runner_job WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else JobState(row[0])


def cancel(conn: sqlite3.Connection, job_id: str, *, now: float,
           reason: str = "cancelled by hand") -> int:
    """A job that has not started → ``cancelled``; returns rows changed."""
    return _cancel(conn, job_id, CANCELLABLE, now, reason)


def discard(conn: sqlite3.Connection, job_id: str, *, now: float,
            reason: str = "discarded by hand") -> int:
    """A waiting or dead job → ``cancelled`` ("discarded"); returns rows changed."""
    return _cancel(conn, job_id, DISCARDABLE, now, reason)


def _cancel(conn: sqlite3.Connection, job_id: str, states: Sequence[JobState], now: float,
            reason: str) -> int:
    count_where(conn, "cancelled", f"id=? AND state IN {sql_in(states)}", (job_id,))
    return conn.execute(
        f"UPDATE runner_job SET state='cancelled', finished_at=?, reason=? "
        f"WHERE id=? AND state IN {sql_in(states)}", (now, reason, job_id)).rowcount


def cancel_waiting(conn: sqlite3.Connection, *, now: float, reason: str, due: bool) -> int:
    """Waiting jobs due by ``now`` (or, with ``due`` False, due later) → ``cancelled``.

    huey's ``flush()`` of its queue and of its schedule.
    """
    compare = "<=" if due else ">"
    count_where(conn, "cancelled", f"{WAITING_WHERE} AND run_at {compare} ?", (now,))
    return conn.execute(
        f"UPDATE runner_job SET state='cancelled', reason=?, finished_at=? "
        f"WHERE {WAITING_WHERE} AND run_at {compare} ?", (reason, now, now)).rowcount


def settle_dispatch(conn: sqlite3.Connection, job_ids: Sequence[str], *, now: float) -> None:
    """Waiting dispatch jobs whose event another dispatch job fanned out → ``completed``."""
    conn.executemany(
        "UPDATE runner_job SET state = 'completed', finished_at = ?, "
        "reason = 'event dispatched by another dispatch job' WHERE id = ? "
        f"AND {WAITING_WHERE}", [(now, job_id) for job_id in job_ids])


# -- prune ---------------------------------------------------------------------------


def prunable(completed_before: float, dead_before: float) -> tuple[str, tuple[float, float]]:
    """The condition (and parameters) of jobs retention deletes."""
    return ("(state IN ('completed','cancelled') AND finished_at < ?) OR "
            "(state = 'dead' AND finished_at < ?)", (completed_before, dead_before))


def prune(conn: sqlite3.Connection, *, completed_before: float, dead_before: float,
          limit: int) -> tuple[int, int]:
    """Delete up to ``limit`` old finished jobs with their errors, logs and results.

    Returns (jobs deleted, their log records deleted).
    """
    where, params = prunable(completed_before, dead_before)
    ids = [r[0] for r in conn.execute(
        f"SELECT id FROM runner_job WHERE {where} LIMIT ?", (*params, limit)).fetchall()]
    logs = 0
    if ids:
        marks = ",".join("?" * len(ids))
        conn.execute(f"DELETE FROM runner_job_error WHERE job_id IN ({marks})", ids)
        logs = conn.execute(f"DELETE FROM runner_log WHERE job_id IN ({marks})", ids).rowcount
        conn.execute(f"DELETE FROM runner_kv WHERE key IN ({marks})", ids)
        conn.execute(f"DELETE FROM runner_job WHERE id IN ({marks})", ids)
    return len(ids), logs
