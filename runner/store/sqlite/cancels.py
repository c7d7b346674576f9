"""Cancelling a job, waiting or running: the request and how a worker learns of it.

A waiting job is cancelled at once. A running one cannot be stopped from
another process, so the request is recorded (``runner_cancel``: job, attempt,
who, when) and the worker running it polls the requests of its jobs, stops the
attempt and settles it ``cancelled`` with the requester in the reason. A
request names one attempt: once that attempt has ended it means nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from runner.store.sqlite import transitions
from runner.store.sqlite.db import Database
from runner.store.states import CANCELLABLE, EXECUTING_SQL, JobState

_CHUNK = 500


def request_cancel(db: Database, job_id: str, *, by: str, now: float) -> JobState | None:
    """Cancel a waiting job, or ask the worker of a running one to stop it.

    Returns the job's state when the request was made: a waiting state (now
    cancelled), ``EXECUTING`` (the worker stops it), another state (nothing
    done), or None when there is no such job.
    """
    def write(conn: sqlite3.Connection) -> JobState | None:
        state = transitions.state_of(conn, job_id)
        if state in CANCELLABLE:
            transitions.cancel(conn, job_id, now=now, reason=f"cancelled by {by}")
        elif state is JobState.EXECUTING:
            conn.execute(
                "INSERT OR REPLACE INTO runner_cancel (job_id, attempt, requested_at, "
                "requested_by) SELECT id, attempt, ?, ? FROM runner_job WHERE id = ?",
                (now, by, job_id))
        return state

    return db.write(write)


def cancel_requests(db: Database, job_ids: Sequence[str]) -> dict[str, str]:
    """Of these jobs, those whose current attempt someone asked to cancel: id -> by whom."""
    found: dict[str, str] = {}
    ids = list(job_ids)
    if not ids or not db.query("SELECT 1 FROM runner_cancel LIMIT 1"):
        return found
    for start in range(0, len(ids), _CHUNK):
        part = ids[start:start + _CHUNK]
        marks = ",".join("?" * len(part))
        found.update(db.query(
            f"SELECT c.job_id, c.requested_by FROM runner_cancel c JOIN runner_job j "
            f"ON j.id = c.job_id AND j.attempt = c.attempt WHERE c.job_id IN ({marks}) "
            f"AND j.state = {EXECUTING_SQL}",
            part))
    return found


def requested_by(conn: sqlite3.Connection, job_id: str, attempt: int) -> str | None:
    """Who asked to cancel this attempt of a job, inside a transaction; None if nobody."""
    row = conn.execute("SELECT requested_by FROM runner_cancel WHERE job_id = ? AND attempt = ?",
                       (job_id, attempt)).fetchone()
    return None if row is None else row[0]


def running_cancel(conn: sqlite3.Connection, job_id: str, attempt: int | None) -> str | None:
    """Who asked to cancel the attempt of a job that runs now (``attempt``, or whichever
    when None), inside a transaction; None if nobody."""
    row = conn.execute(
        f"SELECT c.requested_by FROM runner_cancel c JOIN runner_job j ON j.id = c.job_id "
        f"AND j.attempt = c.attempt WHERE c.job_id = ? AND j.state = {EXECUTING_SQL} "
        f"AND (j.attempt = ? OR ? IS NULL)", (job_id, attempt, attempt)).fetchone()
    return None if row is None else row[0]


def forget_cancel(conn: sqlite3.Connection, job_id: str) -> None:
    """Drop a job's request once its attempt is settled (in that transaction)."""
    conn.execute("DELETE FROM runner_cancel WHERE job_id = ?", (job_id,))


def forget_settled_cancels(conn: sqlite3.Connection) -> int:
    """Drop requests whose attempt is over (a job that finished before its worker looked)."""
    return conn.execute(
        f"DELETE FROM runner_cancel WHERE NOT EXISTS (SELECT 1 FROM runner_job j WHERE "
        f"j.id = runner_cancel.job_id AND j.attempt = runner_cancel.attempt "
        f"AND j.state = {EXECUTING_SQL})").rowcount
