"""Pauses, cancel requests of running jobs and full queues that drop their oldest jobs.

The same meaning as on SQLite (:mod:`runner.store.sqlite.pauses`,
:mod:`runner.store.sqlite.cancels`): the state lives in the database, so it
holds for every worker of every host and survives restarts. A ``runner_pause``
row records a resume too (``paused = 0``), so ``[queues.NAME] paused = true``
only seeds a queue nobody has paused or resumed yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from runner.store.job_rows import QueueBound
from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.counting import count_where
from runner.store.rows import PauseRow
from runner.store.states import CANCELLABLE, WAITING, JobState

#: What can be paused.
KINDS = ("queue", "task")
_WAITING = [s.value for s in WAITING]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


# -- pauses ------------------------------------------------------------------------------


def set_pause(conn: psycopg.Connection, kind: str, name: str, paused: bool, *, now: float,
              by: str | None) -> bool:
    """Pause or resume; returns whether the state changed."""
    _check_kind(kind)
    row = conn.execute("SELECT paused FROM runner_pause WHERE kind = %s AND name = %s "
                       "FOR UPDATE", (kind, name)).fetchone()
    conn.execute(
        "INSERT INTO runner_pause (kind, name, paused, changed_at, changed_by) "
        "VALUES (%s,%s,%s,%s,%s) ON CONFLICT (kind, name) DO UPDATE SET "
        "paused = excluded.paused, changed_at = excluded.changed_at, "
        "changed_by = excluded.changed_by", (kind, name, int(paused), now, by))
    return row is None or bool(row[0]) != paused


def seed_pauses(conn: psycopg.Connection, kind: str, names: Sequence[str], *, now: float,
                by: str = "settings") -> None:
    """Pause the named queues or tasks that have no recorded state yet."""
    _check_kind(kind)
    conn.execute(
        "INSERT INTO runner_pause (kind, name, paused, changed_at, changed_by) "
        "SELECT %s, name, 1, %s, %s FROM unnest(%s::text[]) AS n(name) "
        "ON CONFLICT (kind, name) DO NOTHING", (kind, now, by, sorted(set(names))))


def list_pauses(db: PgDatabase) -> list[PauseRow]:
    """Every recorded state (paused or resumed), by kind and name."""
    return [PauseRow(k, n, bool(p), at, by) for k, n, p, at, by in db.query(
        "SELECT kind, name, paused, changed_at, changed_by FROM runner_pause "
        "ORDER BY kind, name")]


def paused_sets(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
    """(paused queues, paused tasks), read inside a claim's transaction."""
    rows = conn.execute("SELECT kind, name FROM runner_pause WHERE paused = 1").fetchall()
    return ([n for k, n in rows if k == "queue"], [n for k, n in rows if k == "task"])


# -- cancel requests ---------------------------------------------------------------------


def request_cancel(conn: psycopg.Connection, job_id: str, *, by: str,
                   now: float) -> JobState | None:
    """Cancel a waiting job, or record a request that the worker of a running one stops it.

    Returns the job's state when asked (see :meth:`runner.store.backend.Store.request_cancel`).
    """
    row = conn.execute("SELECT state FROM runner_job WHERE id = %s FOR UPDATE",
                       (job_id,)).fetchone()
    state = None if row is None else JobState(row[0])
    if state in CANCELLABLE:
        count_where(conn, "cancelled", "id = %s", (job_id,))
        conn.execute("UPDATE runner_job SET state = %s, finished_at = %s, reason = %s "
                     "WHERE id = %s", (JobState.CANCELLED.value, now, f"cancelled by {by}",
                                       job_id))
    elif state is JobState.EXECUTING:
        conn.execute(
            "INSERT INTO runner_cancel (job_id, attempt, requested_at, requested_by) "
            "SELECT id, attempt, %s, %s FROM runner_job WHERE id = %s "
            "ON CONFLICT (job_id) DO UPDATE SET attempt = excluded.attempt, "
            "requested_at = excluded.requested_at, requested_by = excluded.requested_by",
            (now, by, job_id))
    return state


def cancel_requests(db: PgDatabase, job_ids: Sequence[str]) -> dict[str, str]:
    """Of these jobs, those whose current attempt someone asked to cancel: id -> by whom."""
    if not job_ids:
        return {}
    return dict(db.query(
        "SELECT c.job_id, c.requested_by FROM runner_cancel c JOIN runner_job j "
        "ON j.id = c.job_id AND j.attempt = c.attempt WHERE c.job_id = ANY(%s) "
        "AND j.state = %s", (list(job_ids), JobState.EXECUTING.value)))


def requested_by(conn: psycopg.Connection, job_id: str, attempt: int) -> str | None:
    """Who asked to cancel this attempt of a job, inside a transaction; None if nobody."""
    row = conn.execute("SELECT requested_by FROM runner_cancel WHERE job_id = %s "
                       "AND attempt = %s", (job_id, attempt)).fetchone()
    return None if row is None else row[0]


def forget_settled_cancels(conn: psycopg.Connection) -> int:
    """Drop requests whose attempt is over (a job that finished before its worker looked)."""
    return conn.execute(
        "DELETE FROM runner_cancel c WHERE NOT EXISTS (SELECT 1 FROM runner_job j WHERE "
        "j.id = c.job_id AND j.attempt = c.attempt AND j.state = %s)",
        (JobState.EXECUTING.value,)).rowcount


def forget_cancel(conn: psycopg.Connection, job_id: str) -> None:
    """Drop a job's request once its attempt is settled (in that transaction)."""
    conn.execute("DELETE FROM runner_cancel WHERE job_id = %s", (job_id,))


# -- full queues -------------------------------------------------------------------------


def count_backpressure(conn: psycopg.Connection, queue: str, *, rejected: int = 0,
                       dropped: int = 0) -> None:
    """Add jobs refused by a full queue (``rejected``) or cancelled to make room (``dropped``)."""
    if rejected or dropped:
        conn.execute(
            "INSERT INTO runner_queue_total (queue, rejected, dropped) VALUES (%s,%s,%s) "
            "ON CONFLICT (queue) DO UPDATE SET "
            "rejected = runner_queue_total.rejected + excluded.rejected, "
            "dropped = runner_queue_total.dropped + excluded.dropped", (queue, rejected, dropped))


def backpressure_totals(db: PgDatabase) -> dict[str, tuple[int, int]]:
    """Per queue: (jobs rejected, jobs dropped) since the database was created."""
    return {q: (int(r), int(d)) for q, r, d in db.query(
        "SELECT queue, rejected, dropped FROM runner_queue_total ORDER BY queue")}


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
        f"RETURNING id, run_at, seq", (JobState.CANCELLED.value, now, reason, *params)).fetchall()
    count_backpressure(conn, queue, dropped=len(rows))
    return [r[0] for r in sorted(rows, key=lambda r: (r[1], r[2]))]
