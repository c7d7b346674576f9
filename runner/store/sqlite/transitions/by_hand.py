"""By hand (CLI, dashboard) and by huey's flush: retry now, cancel, discard, prune."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from runner.store.sqlite.conditions import WAITING_WHERE
from runner.store.sqlite.counters import count_where
from runner.store.sqlite.transitions import parking
from runner.store.states import (
    CANCELLABLE,
    DISCARDABLE,
    RETRYABLE,
    JobState,
    sql_in,
)
from runner.store.tables import requested_sql

#: The times a waiting job keeps when it is cancelled or discarded (one ``?``: now). A job
#: whose last attempt finished (retrying, dead) keeps that attempt's end, so its run time
#: stays true: a discard three minutes after a 1 ms run is not a three-minute run. A job
#: with no finished attempt ends at the cancel, and an attempt's start whose end is not
#: known (handed back at shutdown, or retried by hand since) goes with it. Retention then
#: counts a cancelled job's age from its last run, as it does a dead one's.
#: The allowance of a job retried by hand: one attempt more than those it had, its
#: asked-for attempts apart (they stay shown apart; see runner.store.tables.requested_sql),
#: or the one it has when that is more. A job retried, cancelled or completed before its
#: budget was spent keeps it: the task's policy (huey counts retries in the job's data)
#: still retries it that often, so a smaller figure would read "3 of 2".
ONE_MORE = f"max(max_attempts, attempt + 1 - {requested_sql()})"

CANCEL_TIMES = ("started_at=CASE WHEN finished_at IS NULL THEN NULL ELSE started_at END, "
                "finished_at=coalesce(finished_at, ?)")


def retry_now(conn: sqlite3.Connection, job_id: str, *, now: float,
              reason: str = "retried by hand") -> int:
    """A finished or retrying job → ``available`` for one more attempt; returns rows changed."""
    return conn.execute(
        f"UPDATE runner_job SET state='available', run_at=?, finished_at=NULL, "
        f"max_attempts={ONE_MORE}, parked=NULL, "
        f"reason=?, crashes=0 WHERE id=? AND state IN {sql_in(RETRYABLE)}",
        (now, reason, job_id)).rowcount


def by_hand_in_bulk(conn: sqlite3.Connection, verb: str, where: str, params: Sequence[object],
                    *, after: int, up_to: int, limit: int, now: float,
                    reason: str | None = None) -> list[int]:
    """Retry now (``verb`` "retry"), discard or cancel the next ``limit`` jobs of a set.

    ``where`` selects the set (its states among those the verb accepts); jobs are
    taken by rowid after ``after`` up to ``up_to``. Returns the rowids changed.
    """
    pick = (f"SELECT rowid FROM runner_job{where} AND rowid > ? AND rowid <= ? "
            f"ORDER BY rowid LIMIT {int(limit)}")
    return change_picked(conn, verb, pick, (*params, after, up_to), now, reason=reason)


def change_picked(conn: sqlite3.Connection, verb: str, pick: str, chosen: tuple,
                  now: float, *, reason: str | None = None) -> list[int]:
    """Retry now (``verb`` "retry"), discard or cancel the jobs ``pick`` selects (a
    ``SELECT rowid`` of its own ``chosen`` parameters); returns the rowids changed.
    ``reason`` replaces the verb's "... by hand"."""
    if verb == "retry":
        change = (f"state='available', run_at=?, finished_at=NULL, max_attempts={ONE_MORE}, "
                  "reason=?, crashes=0, parked=NULL")
        reason = reason or "retried by hand"
    else:
        reason = reason or ("discarded by hand" if verb == "discard" else "cancelled by hand")
        change = f"state='cancelled', {CANCEL_TIMES}, reason=?, parked=NULL"
    if verb != "retry":  # the same rows the update picks, in this transaction
        count_where(conn, "cancelled", f"rowid IN ({pick})", chosen)
    changed = [r[0] for r in conn.execute(
        f"UPDATE runner_job SET {change} WHERE rowid IN ({pick}) RETURNING rowid",
        (now, reason, *chosen)).fetchall()]
    if changed and verb != "retry":
        parking.room_everywhere(conn)
    return changed


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
    changed = conn.execute(
        f"UPDATE runner_job SET state='cancelled', {CANCEL_TIMES}, reason=?, parked=NULL "
        f"WHERE id=? AND state IN {sql_in(states)}", (now, reason, job_id)).rowcount
    if changed:
        parking.room_for(conn, [job_id])
    return changed


def cancel_waiting(conn: sqlite3.Connection, *, now: float, reason: str, due: bool) -> int:
    """Waiting jobs due by ``now`` (or, with ``due`` False, due later) → ``cancelled``.

    huey's ``flush()`` of its queue and of its schedule.
    """
    compare = "<=" if due else ">"
    count_where(conn, "cancelled", f"{WAITING_WHERE} AND run_at {compare} ?", (now,))
    changed = conn.execute(
        f"UPDATE runner_job SET state='cancelled', reason=?, {CANCEL_TIMES}, parked=NULL "
        f"WHERE {WAITING_WHERE} AND run_at {compare} ?", (reason, now, now)).rowcount
    if changed:
        parking.room_everywhere(conn)
    return changed


def settle_dispatch(conn: sqlite3.Connection, job_ids: Sequence[str], *, now: float) -> None:
    """Waiting dispatch jobs whose event another dispatch job fanned out → ``completed``."""
    conn.executemany(
        "UPDATE runner_job SET state = 'completed', finished_at = ?, parked = NULL, "
        "reason = 'event dispatched by another dispatch job' WHERE id = ? "
        f"AND {WAITING_WHERE}", [(now, job_id) for job_id in job_ids])
    parking.room_for(conn, job_ids)


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
