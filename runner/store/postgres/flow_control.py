"""PostgreSQL: pauses, cancel requests of running jobs and the counts of full queues.

The same meaning as on SQLite (:mod:`runner.store.sqlite.pauses`,
:mod:`runner.store.sqlite.cancels`): the state lives in the database, so it
holds for every worker of every host and survives restarts. A ``runner_pause``
row records a resume too (``paused = 0``), so ``[queues.NAME] paused = true``
only seeds a queue nobody has paused or resumed yet.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.flow_control`.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from runner.store.postgres import transitions
from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.transitions import parking
from runner.store.rows import PauseRow
from runner.store.states import CANCELLABLE, JobState

#: What can be paused.
KINDS = ("queue", "task")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def list_pauses(db: PgDatabase) -> list[PauseRow]:
    """Every recorded state (paused or resumed), by kind and name."""
    return [PauseRow(k, n, bool(p), at, by) for k, n, p, at, by in db.query(
        "SELECT kind, name, paused, changed_at, changed_by FROM runner_pause "
        "ORDER BY kind, name")]


def read_backpressure(db: PgDatabase) -> dict[str, tuple[int, int]]:
    """Per queue: (jobs rejected, jobs dropped) since the database was created."""
    return {q: (int(r), int(d)) for q, r, d in db.query(
        "SELECT queue, rejected, dropped FROM runner_queue_total ORDER BY queue")}


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


def request_cancel(conn: psycopg.Connection, job_id: str, *, by: str,
                   now: float) -> JobState | None:
    """Cancel a waiting job, or record a request that the worker of a running one stops it.

    Returns the job's state when asked (see :meth:`runner.store.backend.Store.request_cancel`).
    """
    row = conn.execute("SELECT state FROM runner_job WHERE id = %s FOR UPDATE",
                       (job_id,)).fetchone()
    state = None if row is None else JobState(row[0])
    if state in CANCELLABLE:
        transitions.cancel(conn, [job_id], now=now, reason=f"cancelled by {by}")
    elif state is JobState.EXECUTING:
        conn.execute(
            "INSERT INTO runner_cancel (job_id, attempt, requested_at, requested_by) "
            "SELECT id, attempt, %s, %s FROM runner_job WHERE id = %s "
            "ON CONFLICT (job_id) DO UPDATE SET attempt = excluded.attempt, "
            "requested_at = excluded.requested_at, requested_by = excluded.requested_by",
            (now, by, job_id))
    return state


def requested_by(conn: psycopg.Connection, job_id: str, attempt: int) -> str | None:
    """Who asked to cancel this attempt of a job, inside a transaction; None if nobody."""
    row = conn.execute("SELECT requested_by FROM runner_cancel WHERE job_id = %s "
                       "AND attempt = %s", (job_id, attempt)).fetchone()
    return None if row is None else row[0]


def running_cancel(conn: psycopg.Connection, job_id: str, attempt: int | None) -> str | None:
    """Who asked to cancel the attempt of a job that runs now (``attempt``, or whichever
    when None), inside a transaction; None if nobody."""
    row = conn.execute(
        "SELECT c.requested_by FROM runner_cancel c JOIN runner_job j ON j.id = c.job_id "
        "AND j.attempt = c.attempt WHERE c.job_id = %s AND j.state = %s "
        "AND (j.attempt = %s OR %s::bigint IS NULL)",
        (job_id, JobState.EXECUTING.value, attempt, attempt)).fetchone()
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


class PostgresFlowControl:
    """:class:`runner.store.flowFlowControlStore` on a PostgreSQL database."""

    db: PgDatabase

    def set_pause(self, kind: str, name: str, paused: bool, *, now: float,
                  by: str | None = None) -> bool:
        channel = self.db.channel

        def write(conn) -> bool:  # noqa: ANN001 - a psycopg connection
            changed = set_pause(conn, kind, name, paused, now=now, by=by)
            if changed and not paused:
                transitions.notify(conn, channel)  # idle workers take the resumed jobs
            return changed

        return self.db.write(write)

    def seed_pauses(self, kind: str, names: Sequence[str], *, now: float) -> None:
        if names:
            self.db.write(lambda conn: seed_pauses(conn, kind, names, now=now))

    def list_pauses(self) -> list[PauseRow]:
        return list_pauses(self.db)

    def request_cancel(self, job_id: str, *, by: str, now: float) -> JobState | None:
        return self.db.write(lambda conn: request_cancel(conn, job_id, by=by,
                                                                  now=now))

    def cancel_requests(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Of these jobs, those whose current attempt someone asked to cancel: id -> by whom."""
        db = self.db
        if not job_ids:
            return {}
        return dict(db.query(
            "SELECT c.job_id, c.requested_by FROM runner_cancel c JOIN runner_job j "
            "ON j.id = c.job_id AND j.attempt = c.attempt WHERE c.job_id = ANY(%s) "
            "AND j.state = %s", (list(job_ids), JobState.EXECUTING.value)))

    def backpressure_totals(self) -> dict[str, tuple[int, int]]:
        return read_backpressure(self.db)

    def release_parked(self) -> int:
        return self.db.write(parking.release_all)
