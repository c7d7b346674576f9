"""Claim: waiting jobs to ``executing`` under a lease, best first, within the limits."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Sequence

from runner.flow import FlowLimits
from runner.store.claim_budget import Choice
from runner.store.job_rows import Claimed
from runner.store.rows import ClaimResult
from runner.store.sqlite.backlog import (
    RUN_AT_EDGES,
    best_due_rowids,
    due_at,
    levels_below,
    top_level,
)
from runner.store.sqlite.conditions import CLAIMABLE_WHERE, WAITING_WHERE
from runner.store.sqlite.limits import Taken, choose_limited
from runner.store.sqlite.pauses import PAUSED_SQL, paused_sets
from runner.store.sqlite.transitions import parking

logger = logging.getLogger(__name__)


def claim(conn: sqlite3.Connection, *, now: float, owner: str, lease_seconds: float,
          want: int, busy: bool, queues: Sequence[str] = (),
          limits: FlowLimits | None = None, leave_suspects: bool = False,
          ahead: bool = False) -> ClaimResult:
    """Claim up to ``want`` due jobs under a lease: ``waiting`` → ``executing``.

    A job that was running when a worker died (``crashes > 0``) is a suspect: it
    is claimed alone, and only when this process runs nothing (``busy`` False),
    so a poison job's next crash is counted against it and not its neighbours.
    With ``leave_suspects`` they stay waiting and the other jobs are claimed.
    With ``limits`` (weights, concurrency, rates, aging), or anything paused, the
    choice is :func:`runner.store.sqlite.limits.choose_limited`'s; without, one
    statement takes the best priorities first, from the queues' own ranges of
    the claim index when the worker takes some queues only (see :mod:`..backlog`).
    """
    queue_sql, params = _queue_filter(queues)
    flow = limits is not None and bool(limits.limited or limits.weights)
    # Whether aging may reorder the waiting jobs (more than one priority waits) is read
    # with aging on and no weights (shares read their queues' levels themselves).
    aging = limits is not None and not limits.weights and limits.aging > 0
    revocations, any_paused, suspect, room, *spread = conn.execute(
        _look_sql(queue_sql, aging, len(queues)),
        (now, *params, *(params * 2 if aging else ()))).fetchone()
    if room:  # a limit that parked jobs may have room: let the next ones out first
        parking.let_out(conn)
    if leave_suspects:
        suspect = 0
    if suspect and busy:
        return ClaimResult([], None, True, bool(revocations))  # let the jobs in flight finish
    revocations = bool(revocations)
    paused: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    if any_paused:
        paused = paused_sets(conn)
    # Aging alone changes nothing while every waiting job has one priority (oldest
    # due first either way): then the one-statement claim below serves. Paused queues
    # and tasks are left out by the flow claim, which reads queue by queue.
    one_level = not aging or spread[0] is None or spread[1] >= spread[0]
    flow = flow or any(paused) or not one_level
    lease = (now, owner, now + lease_seconds)
    if flow:
        # Without weights, in the order of the claim index: the plain claim's statement
        # serves whenever no limit can bind and nothing is left out (choose_limited).
        plain = (functools.partial(_claim_due, conn, lease, queues, now, False)
                 if one_level and limits is not None and not limits.weights else None)

        def choose(suspects: bool) -> Choice:
            return choose_limited(conn, now=now, want=1 if suspects else want, queues=queues,
                                  limits=limits or FlowLimits(), paused=paused,
                                  crashes="> 0" if suspects else "= 0",
                                  take=functools.partial(claim_rowids, conn, lease),
                                  park=functools.partial(parking.park, conn),
                                  ahead=ahead and not suspects,
                                  plain=None if suspects else plain)
        choice = choose(bool(suspect))
        if suspect and not choice.ids and not (isinstance(choice, Taken) and choice.rows):
            # Every due suspect is held back by a limit: it cannot run now, alone or not,
            # so the other jobs are claimed meanwhile rather than none at all.
            suspect, choice = 0, choose(False)
        ids, rows = choice.ids, []
        if isinstance(choice, Taken):
            rows = choice.rows
        elif ids:
            rows = claim_rowids(conn, lease, ",".join("?" * len(ids)), ids,
                                "id, data, attempt, priority, run_at, task, queue, rowid")
            rank = {rowid: n for n, rowid in enumerate(ids)}
            rows.sort(key=lambda r: rank[r[7]])
        next_due = choice.next_due
        if not rows and _edges(conn, queues)[1] is _NOT_A_NUMBER:
            bury_bad_run_at(conn, now)  # a hand-edited run_at that is not a number
            next_due = now
        claimed = [Claimed(r[0], r[1], r[2], now) for r in rows]
        return ClaimResult(claimed, next_due, bool(suspect), revocations,
                           {r[0]: (r[5], r[6]) for r in rows}, choice.full)
    rows = _claim_due(conn, lease, queues, now, bool(suspect), 1 if suspect else want)
    next_due = None
    if not rows:
        next_due, latest = _edges(conn, queues)
        if latest is _NOT_A_NUMBER:
            next_due = bury_bad_run_at(conn, now)
    claimed = [Claimed(r[0], r[1], r[2], now) for r in sorted(rows, key=lambda r: (-r[3], r[4]))]
    return ClaimResult(claimed, next_due, bool(suspect), revocations,
                       {r[0]: (r[5], r[6]) for r in rows})


_RETURNING = "id, data, attempt, priority, run_at, task, queue"
_CLAIMS = "runner_job_claim"
#: The due jobs of every queue at the highest level of priority, oldest first.
_TOP_DUE = (f"SELECT rowid FROM runner_job INDEXED BY {_CLAIMS} WHERE {CLAIMABLE_WHERE} "
            f"AND {top_level(_CLAIMS)} AND run_at <= ? AND crashes = 0 ORDER BY run_at LIMIT ?")


def _claim_due(conn: sqlite3.Connection, lease: tuple[float, str, float],
               queues: Sequence[str], now: float, suspect: bool, want: int,
               returning: str = _RETURNING) -> list[tuple]:
    """Claim the best due jobs of ``queues`` (all when empty), up to ``want``; the
    ``returning`` columns of each.

    A suspect is looked for among the few jobs that were running when a worker died
    (their own index). Other jobs level by level of priority (:mod:`..backlog`): the
    highest level's in one statement, which is all a claim of a busy queue reads; in
    the claim index, or each queue's range of it when the worker takes some queues only.
    """
    if suspect:
        queue_sql, params = _queue_filter(queues)
        return claim_rowids(
            conn, lease, f"SELECT rowid FROM runner_job INDEXED BY runner_job_suspect WHERE "
            f"{WAITING_WHERE} AND crashes > 0 AND run_at <= ?{queue_sql} "
            f"ORDER BY priority DESC, run_at LIMIT ?", (now, *params, want), returning)
    if queues:
        ids = best_due_rowids(conn, queues, now, want, " AND crashes = 0")
        return claim_rowids(conn, lease, ",".join("?" * len(ids)), ids, returning)
    rows = claim_rowids(conn, lease, _TOP_DUE, (now, want), returning)
    if len(rows) < want:
        # All of the highest level's due jobs are taken: its level is the rows'.
        for level in levels_below(conn, _CLAIMS, "", (), rows[0][3] if rows else None):
            rows += claim_rowids(conn, lease, due_at(_CLAIMS, condition=" AND crashes = 0"),
                                 (level, now, want - len(rows)), returning)
            if len(rows) >= want:
                break
    return rows


#: What :func:`_edges` says of a ``run_at`` that is not a number.
_NOT_A_NUMBER = object()


def _edges(conn: sqlite3.Connection, queues: Sequence[str]) -> tuple[float | None, object]:
    """The earliest ``run_at`` among the waiting jobs of ``queues`` (every queue when
    empty), and the latest, or :data:`_NOT_A_NUMBER` when a hand edit made one text
    (SQLite sorts text after every number). Read queue by queue and level by level of
    priority: a claim that found nothing due never reads the jobs due later."""
    names = queues or [q for (q,) in conn.execute(
        "SELECT queue FROM runner_queue WHERE waiting > 0")]
    earliest: float | None = None
    latest: object = None
    for queue in names:
        first, last = conn.execute(RUN_AT_EDGES, (queue,)).fetchone()
        if not isinstance(last, (int, float, type(None))):
            latest = _NOT_A_NUMBER
        if isinstance(first, (int, float)) and (earliest is None or first < earliest):
            earliest = first
    return earliest, latest


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
#: paused (only then are the pauses read), whether a suspect is due, and whether a
#: limit that parked jobs may have room (runner.store.parking). A suspect
#: of a paused queue or task does not count, so its test leaves them out in SQL.
_LOOK = (
    "SELECT EXISTS (SELECT 1 FROM runner_kv WHERE (key >= 'r:' AND key < 'r;') "
    "OR (key >= 'rt:' AND key < 'rt;')), "
    "EXISTS (SELECT 1 FROM runner_pause WHERE paused = 1), "
    f"EXISTS (SELECT 1 FROM runner_job INDEXED BY runner_job_suspect WHERE "
    f"{WAITING_WHERE} AND crashes > 0 AND run_at <= ?{{queues}}{PAUSED_SQL}), "
    "EXISTS (SELECT 1 FROM runner_room)")
#: With aging on and no other limit: the highest and lowest priority waiting, read by
#: the claim index from either end. (Anything paused sends the claim to the flow claim
#: whatever the spread, so pauses are not read here.)
_SPREAD = (
    f", (SELECT max(priority) FROM runner_job INDEXED BY runner_job_claim WHERE "
    f"{CLAIMABLE_WHERE}), "
    f"(SELECT min(priority) FROM runner_job INDEXED BY runner_job_claim WHERE "
    f"{CLAIMABLE_WHERE})")
#: The same for a worker of some queues: each queue's ends, one seek each (the
#: parameters name each queue twice).
_QUEUE_LEVEL = (f"(SELECT {{}}(priority) FROM runner_job INDEXED BY runner_job_queue_claim "
                f"WHERE {CLAIMABLE_WHERE} AND queue = ?)")


@functools.lru_cache(maxsize=64)
def _look_sql(queue_sql: str, aging: bool, queues: int) -> str:
    look = _LOOK.format(queues=queue_sql)
    if not aging:
        return look
    if not queues:
        return look + _SPREAD
    ends = [" UNION ALL ".join([f"SELECT {_QUEUE_LEVEL.format(end)} AS p"] * queues)
            for end in ("max", "min")]
    return look + f", (SELECT max(p) FROM ({ends[0]})), (SELECT min(p) FROM ({ends[1]}))"


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
                  expires_at: float) -> frozenset[str]:
    """Keep ``owner``'s running jobs leased until ``expires_at`` (or a later expiry they
    have); returns the ids of those it holds."""
    held: set[str] = set()
    ids = list(job_ids)
    # One statement per chunk, not per job: SQLite allows 32,766 parameters.
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        held.update(row[0] for row in conn.execute(
            "UPDATE runner_job SET lease_expires_at=max(coalesce(lease_expires_at, ?), ?) "
            f"WHERE id IN ({','.join('?' * len(chunk))}) AND lease_owner=? "
            "AND state='executing' RETURNING id",
            (expires_at, expires_at, *chunk, owner)))
    return frozenset(held)
