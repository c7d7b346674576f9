"""Claim: waiting jobs to ``executing`` under a lease, best first, within the limits."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Sequence

from runner.flow import FlowLimits
from runner.store.job_rows import Claimed
from runner.store.rows import ClaimResult
from runner.store.sqlite.conditions import WAITING_WHERE
from runner.store.sqlite.limits import Taken, choose_limited
from runner.store.sqlite.pauses import PAUSED_SQL, claim_filter, paused_sets

logger = logging.getLogger(__name__)


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
