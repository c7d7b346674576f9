"""Claim in PostgreSQL: one UPDATE over a FOR UPDATE SKIP LOCKED pick, acks carried along."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from runner.flow import FlowLimits
from runner.store.job_rows import Ack, Claimed
from runner.store.postgres import limits as _limits
from runner.store.postgres.counting import (
    COMPLETED_COLUMNS,
    add_to,
)
from runner.store.postgres.transitions import parking
from runner.store.postgres.transitions.values import (
    _AVAILABLE,
    _COMPLETED,
    _EXECUTING,
    _WAITING,
    _WAITING_IN,
)
from runner.store.rows import ClaimResult
from runner.store.views import BUCKETS


def claim(conn: psycopg.Connection, *, now: float, owner: str, lease_seconds: float,
          want: int, busy: bool, queues: Sequence[str] = (),
          limits: FlowLimits | None = None, leave_suspects: bool = False) -> ClaimResult:
    """Claim up to ``want`` due jobs under a lease in one statement: ``waiting`` → ``executing``.

    Rows another claimer holds are skipped (``SKIP LOCKED``), never waited on.
    A job that was running when a worker died (``crashes > 0``) is claimed
    alone, and only by a process running nothing (``busy`` False); with
    ``leave_suspects`` they stay waiting and the other jobs are claimed. With ``limits``
    (aging, weights, concurrency, rates), or anything paused, the choice is
    :func:`runner.store.postgres.limits.choose`'s, which leaves paused queues and
    tasks out. A worker of some queues reads each queue's range of the claim index
    (:func:`pick_due`), never the jobs of the others.
    """
    queue_sql = " AND queue = ANY(%(queues)s)" if queues else ""
    paused_queues, paused_tasks = paused_sets(conn)
    paused_sql = ""
    if paused_queues:
        paused_sql += " AND queue <> ALL(%(paused_queues)s)"
    if paused_tasks:
        paused_sql += " AND task <> ALL(%(paused_tasks)s)"
    params = {"now": now, "owner": owner, "expires": now + lease_seconds,
              "queues": list(queues), "waiting": _WAITING,
              "paused_queues": paused_queues, "paused_tasks": paused_tasks}
    # Jobs that were running when a worker died are few: their own index, any filter.
    revocations, suspect, room = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM runner_kv WHERE key LIKE 'r:%%' OR key LIKE 'rt:%%'), "
        "EXISTS (SELECT 1 FROM runner_job WHERE state = ANY(%(waiting)s) "
        f"AND crashes > 0 AND run_at <= %(now)s{queue_sql}{paused_sql}), "
        "EXISTS (SELECT 1 FROM runner_room)", params).fetchone()
    if room:  # a limit that parked jobs may have room: let the next ones out first
        parking.let_out(conn)
    if leave_suspects:
        suspect = False
    if suspect and busy:
        return ClaimResult([], None, True, revocations)  # let the jobs in flight finish first
    params["want"] = 1 if suspect else want
    if paused_tasks or (limits is not None and _limits.needs_flow(conn, limits, queues)):
        choice = _limits.choose(conn, now=now, want=params["want"], queues=queues,
                                limits=limits or FlowLimits(), suspect=bool(suspect),
                                paused_queues=paused_queues, paused_tasks=paused_tasks)
        if suspect and not choice.ids:
            # Every due suspect is held back by a limit: it cannot run now, alone or
            # not, so the other jobs are claimed meanwhile rather than none at all.
            suspect = False
            choice = _limits.choose(conn, now=now, want=want, queues=queues,
                                    limits=limits or FlowLimits(), suspect=False,
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
        # After the claim's own rows are executing: they count towards the limits too.
        parking.park(conn, choice.parking, limits or FlowLimits())
        return ClaimResult([Claimed(r[0], bytes(r[1]), r[2], now) for r in rows],
                           choice.next_due, bool(suspect), bool(revocations),
                           {r[0]: (r[3], r[4]) for r in rows}, choice.full)
    # Paused queues are left out by reading the others one by one.
    names = UNPAUSED_QUEUES if paused_queues else WORKERS_QUEUES if queues else None
    def take(suspects: bool) -> list[tuple]:
        pick = (f"SELECT id FROM runner_job WHERE state = ANY(%(waiting)s) AND run_at <= "
                f"%(now)s{queue_sql}{paused_sql} AND crashes > 0 ORDER BY priority DESC, "
                f"run_at LIMIT %(want)s FOR UPDATE SKIP LOCKED") if suspects else pick_due(
                    names, "= ANY(%(waiting)s)")
        return conn.execute(
            f"UPDATE runner_job j SET state = '{_EXECUTING}', attempt = j.attempt + 1, "
            f"started_at = %(now)s, finished_at = NULL, lease_owner = %(owner)s, "
            f"lease_expires_at = %(expires)s WHERE j.id = ANY(ARRAY({pick})) "
            f"RETURNING j.id, j.data, j.attempt, j.priority, j.run_at, j.task, j.queue",
            params).fetchall()

    rows = take(bool(suspect))
    if suspect and not rows:
        # Another worker's claim took the suspect (locked, skipped): the others are due.
        suspect, params["want"] = False, want
        rows = take(False)
    next_due = None
    if not rows:
        next_due = conn.execute(
            f"SELECT {earliest_waiting(names or WAITING_QUEUES, '= ANY(%(waiting)s)')}",
            params).fetchone()[0]
    claimed = [Claimed(r[0], bytes(r[1]), r[2], now)
               for r in sorted(rows, key=lambda r: (-r[3], r[4]))]
    return ClaimResult(claimed, next_due, bool(suspect), bool(revocations),
                       {r[0]: (r[5], r[6]) for r in rows})


#: Queues as :func:`pick_due` and :func:`earliest_waiting` read them one by one: the
#: worker's, those with waiting jobs, or those with waiting jobs but the paused ones.
WORKERS_QUEUES = "%(queues)s::text[]"
WAITING_QUEUES = "ARRAY(SELECT queue FROM runner_queue GROUP BY queue HAVING sum(waiting) > 0)"
UNPAUSED_QUEUES = (
    "ARRAY(SELECT name FROM unnest(coalesce(nullif(%(queues)s::text[], '{}'), ARRAY("
    "SELECT queue FROM runner_queue GROUP BY queue HAVING sum(waiting) > 0))) AS q(name) "
    "WHERE name <> ALL(%(paused_queues)s))")


def pick_due(queues: str | None, waiting: str) -> str:
    """The ids of the best ``%(want)s`` due jobs (not suspects), locked, skipping those
    another claim holds: of every queue (``queues`` None), or of each queue of the
    array ``queues`` read in its own range of the queue's claim index and merged.
    ``waiting`` is the condition on ``state`` of a waiting job."""
    due = f"state {waiting} AND parked IS NULL AND run_at <= %(now)s AND crashes = 0"
    if queues is None:
        return (f"SELECT id FROM runner_job WHERE {due} ORDER BY priority DESC, run_at "
                f"LIMIT %(want)s FOR UPDATE SKIP LOCKED")
    return (f"SELECT j.id FROM unnest({queues}) AS q(name) CROSS JOIN LATERAL ("
            f"SELECT id, priority, run_at FROM runner_job WHERE {due} AND queue = q.name "
            f"ORDER BY priority DESC, run_at LIMIT %(want)s FOR UPDATE SKIP LOCKED) j "
            f"ORDER BY j.priority DESC, j.run_at LIMIT %(want)s")


def earliest_waiting(queues: str, waiting: str) -> str:
    """The earliest ``run_at`` of a waiting job of each queue of the array ``queues``,
    read queue by queue from the start of its range of ``runner_job_queue_waiting``:
    never the jobs due later. ``waiting`` is the condition on ``state`` of a waiting job."""
    return (f"(SELECT min(first.run_at) FROM unnest({queues}) AS q(name) CROSS JOIN LATERAL "
            f"(SELECT run_at FROM runner_job WHERE state {waiting} AND parked IS NULL "
            f"AND queue = q.name ORDER BY run_at LIMIT 1) first)")


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
    must decide (a job whose worker died waits, something is paused, or, with
    priority aging, the waiting jobs have several priorities): the caller then
    runs :func:`claim`.
    """
    scope = " AND queue = ANY(%(queues)s)" if queues else ""
    levels = "false"
    if limits is not None and not limits.plain:
        # Two reads of the claim index, one from each end (not an aggregate over all),
        # or of each queue's range of it for a worker of some queues.
        ends = []
        for order in ("DESC", "ASC"):
            top = (f"SELECT priority FROM runner_job WHERE state IN {_WAITING_IN} "
                   f"AND parked IS NULL{{}} ORDER BY priority {order} LIMIT 1")
            ends.append(f"({top.format('')})" if not queues else
                        f"(SELECT {'max' if order == 'DESC' else 'min'}(e.priority) FROM "
                        f"unnest(%(queues)s::text[]) AS q(name) CROSS JOIN LATERAL "
                        f"({top.format(' AND queue = q.name')}) e)")
        levels = f"({ends[0]} <> {ends[1]})"
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
        # statement's own transaction only. Anything paused leaves the claim to the flow
        # claim, which reads queue by queue past paused queues and tasks.
        "flags AS (SELECT set_config('synchronous_commit', 'off', true) AS quick, "
        "EXISTS (SELECT 1 FROM runner_kv WHERE key LIKE 'r:%%' "
        "OR key LIKE 'rt:%%') AS revoked, "
        f"EXISTS (SELECT 1 FROM runner_job WHERE state IN {_WAITING_IN} AND crashes > 0 "
        f"AND run_at <= %(now)s{scope}) OR EXISTS (SELECT 1 FROM runner_pause "
        f"WHERE paused = 1) AS suspect, {levels} AS levels), "
        f"claimed AS (UPDATE runner_job j SET state = '{_EXECUTING}', attempt = j.attempt + 1, "
        "started_at = %(now)s, finished_at = NULL, lease_owner = %(owner)s, "
        "lease_expires_at = %(expires)s WHERE j.id = ANY(ARRAY("
        f"{pick_due(WORKERS_QUEUES if queues else None, f'IN {_WAITING_IN}')})) "
        "AND NOT (SELECT suspect OR coalesce(levels, false) FROM flags) "
        "RETURNING j.id, j.data, j.attempt, j.priority, j.run_at, j.task, j.queue)")
    rows = conn.execute(
        "WITH " + ", ".join(parts) + " SELECT f.revoked, f.suspect OR coalesce(f.levels, false), "
        "CASE WHEN NOT EXISTS (SELECT 1 FROM claimed) THEN "
        f"{earliest_waiting(WORKERS_QUEUES if queues else WAITING_QUEUES, f'IN {_WAITING_IN}')}"
        " END, "
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
                  expires_at: float) -> frozenset[str]:
    """Keep ``owner``'s running jobs leased until ``expires_at`` (or a later expiry they
    have); returns the ids of those it holds."""
    return frozenset(r[0] for r in conn.execute(
        "UPDATE runner_job SET lease_expires_at = GREATEST(lease_expires_at, %s) "
        f"WHERE id = ANY(%s) AND lease_owner = %s AND state = '{_EXECUTING}' RETURNING id",
        (expires_at, list(job_ids), owner)).fetchall())


def paused_sets(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
    """(paused queues, paused tasks), read inside a claim's transaction."""
    rows = conn.execute("SELECT kind, name FROM runner_pause WHERE paused = 1").fetchall()
    return ([n for k, n in rows if k == "queue"], [n for k, n in rows if k == "task"])
