"""Writes made to jobs by hand (the CLI and the dashboard): retry now, cancel, discard, replay.

Each is a short ``BEGIN IMMEDIATE`` transaction per chunk of ids that checks the
state it expects, so acting on a live worker's database is safe: a job that
started meanwhile is not touched, and the count says so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from runner.errors import InvalidAction
from runner.store import transitions
from runner.store.db import Database
from runner.store.states import FINAL

_CHUNK = 500


def retry_jobs(db: Database, job_ids: Sequence[str], *, now: float) -> int:
    """Make finished or retrying jobs waiting again, due now; returns how many changed."""
    return _each(db, job_ids, lambda conn, i: transitions.retry_now(conn, i, now=now))


def cancel_jobs(db: Database, job_ids: Sequence[str], *, now: float) -> int:
    """Cancel jobs that have not started; returns how many changed."""
    return _each(db, job_ids, lambda conn, i: transitions.cancel(conn, i, now=now))


def discard_jobs(db: Database, job_ids: Sequence[str], *, now: float) -> int:
    """Mark waiting or dead jobs cancelled ("discarded"); returns how many changed."""
    return _each(db, job_ids, lambda conn, i: transitions.discard(conn, i, now=now))


def redispatch_event(db: Database, event_id: str, dispatch_job: str, *, now: float) -> None:
    """Put an event back to ``pending`` and make its dispatch job due again, in one step.

    Raises:
        InvalidAction: the dispatch job is gone (pruned), or it is being dispatched now.
    """

    def write(conn: sqlite3.Connection) -> None:
        state = transitions.state_of(conn, dispatch_job)
        if state is None:
            raise InvalidAction(f"event {event_id}: its dispatch job is gone (pruned); replay "
                                "it with `python -m runner events replay`")
        if state not in FINAL:
            raise InvalidAction(f"event {event_id} is being dispatched now ({state})")
        conn.execute("UPDATE runner_event SET status = 'pending' WHERE id = ?", (event_id,))
        transitions.retry_now(conn, dispatch_job, now=now, reason="event replayed by hand")

    db.write(write)


def _each(db: Database, job_ids: Sequence[str],
          update: Callable[[sqlite3.Connection, str], int]) -> int:
    total = 0
    for start in range(0, len(job_ids), _CHUNK):
        chunk = job_ids[start:start + _CHUNK]
        total += db.write(lambda conn, chunk=chunk: sum(update(conn, i) for i in chunk))
    return total
