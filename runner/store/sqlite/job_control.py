"""Writes made to jobs by hand (the CLI and the dashboard): retry now, cancel, discard, replay.

Each is a short ``BEGIN IMMEDIATE`` transaction per chunk of ids that checks the
state it expects, so acting on a live worker's database is safe: a job that
started meanwhile is not touched, and the count says so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace

from runner.store.batches import (
    bulk_condition,
    cancel_reason,
    check_redispatch,
    group_totals,
    walk_bulk,
)
from runner.store.sqlite import transitions
from runner.store.sqlite.db import Database
from runner.store.sqlite.integrity import index_hint
from runner.store.sqlite.queries import JobFilter, job_where
from runner.store.states import FAILED_SQL

_CHUNK = 500


def retry_jobs(db: Database, job_ids: Sequence[str], *, now: float) -> int:
    """Make finished or retrying jobs waiting again, due now; returns how many changed."""
    return _each(db, job_ids, lambda conn, i: transitions.retry_now(conn, i, now=now))


def cancel_jobs(db: Database, job_ids: Sequence[str], *, now: float,
                by: str | None = None) -> int:
    """Cancel jobs that have not started (``by`` asked); returns how many changed."""
    reason = cancel_reason(by)
    return _each(db, job_ids, lambda conn, i: transitions.cancel(conn, i, now=now,
                                                                 reason=reason))


def discard_jobs(db: Database, job_ids: Sequence[str], *, now: float) -> int:
    """Mark waiting or dead jobs cancelled ("discarded"); returns how many changed."""
    return _each(db, job_ids, lambda conn, i: transitions.discard(conn, i, now=now))


def redispatch_event(db: Database, event_id: str, dispatch_job: str, *, now: float) -> None:
    """Put an event back to ``pending`` and make its dispatch job due again, in one step.

    Raises:
        InvalidAction: the dispatch job is gone (pruned), or it is being dispatched now.
    """

    def write(conn: sqlite3.Connection) -> None:
        check_redispatch(event_id, transitions.state_of(conn, dispatch_job))
        conn.execute("UPDATE runner_event SET status = 'pending' WHERE id = ?", (event_id,))
        transitions.retry_now(conn, dispatch_job, now=now, reason="event replayed by hand")

    db.write(write)


def _bulk_where(filters: JobFilter, states: Sequence[str]) -> tuple[str, list[object]]:
    return bulk_condition(*job_where(replace(filters, state=None)), states)


def count_for_bulk(db: Database, filters: JobFilter, states: Sequence[str]) -> tuple[int, int]:
    """(jobs, highest rowid) of the jobs of ``filters`` in ``states``: a bulk action's set."""
    where, params = _bulk_where(filters, states)
    count, top = db.query(f"SELECT count(*), max(rowid) FROM runner_job{where}", params)[0]
    return count, top or 0


def run_bulk(db: Database, verb: str, filters: JobFilter, states: Sequence[str], *,
             up_to_rowid: int, now: float, chunk: int = 500, by: str | None = None) -> int:
    """Retry now, discard or cancel (``by`` asked) a counted set, oldest first, in short
    transactions; how many.

    A job that changed state since the count is left alone, and so is every job
    added after it (rowid above ``up_to_rowid``).
    """
    where, params = _bulk_where(filters, states)
    reason = cancel_reason(by) if verb == "cancel" else None
    return walk_bulk(lambda last: db.write(lambda conn: transitions.by_hand_in_bulk(
        conn, verb, where, params, after=last, up_to=up_to_rowid, limit=chunk, now=now,
        reason=reason)))


def _each(db: Database, job_ids: Sequence[str],
          update: Callable[[sqlite3.Connection, str], int]) -> int:
    total = 0
    for start in range(0, len(job_ids), _CHUNK):
        chunk = job_ids[start:start + _CHUNK]
        total += db.write(lambda conn, chunk=chunk: sum(update(conn, i) for i in chunk))
    return total


# -- a failure group: the retrying and dead jobs of an error type and messages -------------

#: Messages one statement names at most (SQLite binds a few hundred parameters cheaply).
_MESSAGES = 200


def _group_ranges(error_type: str | None, messages: Sequence[str | None]
                  ) -> list[tuple[str, list[object]]]:
    """Conditions on ``runner_job_failure`` (error type, message, failed state), each for
    a batch of messages: ranges of the index, whatever else the table holds."""
    head = f"error_type IS ? AND state IN {FAILED_SQL} AND "
    texts = [m for m in messages if m is not None]
    ranges: list[tuple[str, list[object]]] = [
        (head + "error_message IS NULL", [error_type])] if None in messages else []
    for start in range(0, len(texts), _MESSAGES):
        batch = texts[start:start + _MESSAGES]
        ranges.append((head + f"error_message IN ({', '.join('?' * len(batch))})",
                       [error_type, *batch]))
    return ranges


def count_failure_group(db: Database, error_type: str | None,
                        messages: Sequence[str | None]) -> tuple[int, int, float | None]:
    """(jobs, highest rowid, latest ``last_failed_at``) of a failure group: every job."""
    hint = index_hint(db, "runner_job_failure")
    return group_totals(
        db.query(f"SELECT count(*), max(rowid), max(last_failed_at) FROM runner_job{hint} "
                 f"WHERE {where}", params)[0]
        for where, params in _group_ranges(error_type, messages))


def run_failure_group(db: Database, verb: str, error_type: str | None,
                      messages: Sequence[str | None], *, up_to_rowid: int,
                      failed_until: float | None, now: float, chunk: int = 500) -> int:
    """Retry now or discard a counted failure group, ``chunk`` jobs per transaction.

    Each step takes the next ``chunk`` jobs of the group's index range that were
    counted (rowid up to ``up_to_rowid``, failed by ``failed_until``); a job changed
    leaves the range (the index holds failed jobs only), so no step reads it again.
    """
    hint = index_hint(db, "runner_job_failure")
    total = 0
    for where, params in _group_ranges(error_type, messages):
        pick = (f"SELECT rowid FROM runner_job{hint} WHERE {where} AND rowid <= ? "
                "AND (last_failed_at IS NULL OR last_failed_at <= ?) "
                f"LIMIT {int(chunk)}")
        chosen = (*params, up_to_rowid, failed_until)
        while True:
            changed = db.write(lambda conn, pick=pick, chosen=chosen: transitions.change_picked(
                conn, verb, pick, chosen, now))
            total += len(changed)
            if len(changed) < chunk:
                break
    return total
