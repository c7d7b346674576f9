"""By hand (CLI, dashboard) and by huey's flush in PostgreSQL: retry now, cancel, prune."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from runner.store.postgres import copy_marks
from runner.store.postgres.counting import (
    count_where,
)
from runner.store.postgres.transitions.enqueue import notify
from runner.store.postgres.transitions.values import (
    _AVAILABLE,
    _CANCELLED,
    _COMPLETED,
    _DEAD,
    _WAITING,
    CANCEL_TIMES,
)
from runner.store.states import (
    CANCELLABLE,
    DISCARDABLE,
    RETRYABLE,
    JobState,
)
from runner.store.tables import requested_sql

#: The allowance of a job retried by hand: one attempt more than those it had, its
#: asked-for attempts apart, or the one it has when that is more (as on SQLite: see
#: runner.store.sqlite.transitions.by_hand.ONE_MORE).
ONE_MORE = f"GREATEST(max_attempts, attempt + 1 - {requested_sql()})"

def retry_now(conn: psycopg.Connection, job_ids: Sequence[str], *, now: float,
              reason: str = "retried by hand") -> int:
    """Finished or retrying jobs → ``available`` for one more attempt; returns rows changed."""
    return conn.execute(
        f"UPDATE runner_job SET state = '{_AVAILABLE}', run_at = %s, finished_at = NULL, "
        f"max_attempts = {ONE_MORE}, reason = %s, crashes = 0 "
        f"WHERE id = ANY(%s) AND state = ANY(%s)",
        (now, reason, list(job_ids), [s.value for s in RETRYABLE])).rowcount


def cancel(conn: psycopg.Connection, job_ids: Sequence[str], *, now: float,
           discard: bool = False, reason: str | None = None) -> int:
    """Jobs that have not started (or, ``discard``, waiting or dead) → ``cancelled``."""
    states = [s.value for s in (DISCARDABLE if discard else CANCELLABLE)]
    reason = reason or ("discarded by hand" if discard else "cancelled by hand")
    count_where(conn, "cancelled", "id = ANY(%s) AND state = ANY(%s)", (list(job_ids), states))
    return conn.execute(
        f"UPDATE runner_job SET state = '{_CANCELLED}', {CANCEL_TIMES}, reason = %s "
        f"WHERE id = ANY(%s) AND state = ANY(%s)",
        (now, reason, list(job_ids), states)).rowcount


def by_hand_in_bulk(conn: psycopg.Connection, verb: str, where: str, params: Sequence[object],
                    *, after: int, up_to: int, limit: int, now: float,
                    channel: str | None = None, recheck: str = "",
                    reason: str | None = None) -> list[int]:
    """Retry now, discard or cancel the next ``limit`` jobs of a set, taken by ``seq``.

    ``where`` selects the set; jobs after ``after`` up to ``up_to`` are taken.
    ``recheck`` as :func:`change_picked` takes it. Returns the ``seq`` of the jobs changed.
    """
    pick = (f"SELECT seq FROM runner_job{where} AND seq > %s AND seq <= %s "
            f"ORDER BY seq LIMIT {int(limit)}")
    return change_picked(conn, verb, pick, (*params, after, up_to), now, channel=channel,
                         recheck=recheck, reason=reason)


def change_picked(conn: psycopg.Connection, verb: str, pick: str, chosen: Sequence[object],
                  now: float, *, channel: str | None = None, recheck: str = "",
                  reason: str | None = None) -> list[int]:
    """Retry now (``verb`` "retry"), discard or cancel the jobs ``pick`` selects (a
    ``SELECT seq`` of its own ``chosen`` parameters); returns the ``seq`` changed.

    ``recheck`` (`` AND ...``, no parameters) is tested again on each row as it is
    updated: a row a worker changed while this waited for its lock is left alone.
    ``reason`` replaces the verb's "... by hand".
    """
    if verb == "retry":
        change = (f"state = '{_AVAILABLE}', run_at = %s, finished_at = NULL, "
                  f"max_attempts = {ONE_MORE}, reason = %s, crashes = 0")
        reason = reason or "retried by hand"
    else:
        reason = reason or ("discarded by hand" if verb == "discard" else "cancelled by hand")
        change = f"state = '{_CANCELLED}', {CANCEL_TIMES}, reason = %s"
    if verb != "retry":
        count_where(conn, "cancelled", f"seq IN ({pick}){recheck}", chosen)
    notify(conn, channel)
    return [r[0] for r in conn.execute(
        f"UPDATE runner_job SET {change} WHERE seq IN ({pick}){recheck} RETURNING seq",
        (now, reason, *chosen)).fetchall()]


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
        f"UPDATE runner_job SET state = '{_CANCELLED}', reason = %s, {CANCEL_TIMES} "
        f"WHERE state = ANY(%s) AND run_at {compare} %s", (reason, now, _WAITING, now)).rowcount


def settle_dispatch(conn: psycopg.Connection, job_ids: Sequence[str], *, now: float) -> None:
    """Waiting dispatch jobs whose event another dispatch job fanned out → ``completed``."""
    conn.execute(
        f"UPDATE runner_job SET state = '{_COMPLETED}', finished_at = %s, "
        f"reason = 'event dispatched by another dispatch job' WHERE id = ANY(%s) "
        f"AND state = ANY(%s)", (now, list(job_ids), _WAITING))


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
        copy_marks.pruned(conn, "jobs")
    return len(ids), logs
