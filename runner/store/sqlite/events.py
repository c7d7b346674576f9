"""All SQL of events: the ``runner_event`` log, fan-out, outcomes, replay and pruning.

An event is one ``runner_event`` row. What happened to it is not stored twice:
each handler delivery is an ordinary job whose ``event_id`` points back at the
event, so a handler's outcome is read from the jobs table (the same rows the
worker leases, retries and recovers).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence

from runner.event_patterns import literal_prefix
from runner.store.batches import delete_in_batches
from runner.store.event_rows import (  # noqa: F401 - re-exported
    OUTCOME_OF_STATE,
    EventRow,
    EventStatus,
    HandlerOutcome,
    NewEvent,
)
from runner.store.event_rules import (
    PAGE,
    dispatch_owners,
    found_event,
    mark_dispatched,
    new_events,
    newest_events,
    outcomes_of,
    replay_jobs,
)
from runner.store.job_rows import NewJob
from runner.store.sqlite import transitions
from runner.store.sqlite.db import Database, lookup_id
from runner.store.sqlite.integrity import index_hint
from runner.store.sqlite.models import DISPATCH_TASK
from runner.store.sqlite.multirow import insert_rows
from runner.store.states import AVAILABLE_SQL, LIVE_SQL

_COLUMNS = ", ".join(EventRow.__dataclass_fields__)


def _waiting_dispatch_job(conn: sqlite3.Connection, now: float) -> str | None:
    row = conn.execute(
        "SELECT id FROM runner_job INDEXED BY runner_job_dispatch_waiting "
        f"WHERE task = '{DISPATCH_TASK}' AND state = {AVAILABLE_SQL} AND run_at <= ? LIMIT 1",
        (now,)).fetchone()
    return row[0] if row else None


def insert_events(db: Database, events: Sequence[NewEvent],
                  dispatch: Sequence[tuple[NewJob, Sequence[str]]], *, now: float,
                  dedupe_window: float, deadline: float) -> list[str]:
    """Write events and their dispatch jobs in one transaction; returns the event ids.

    An event whose key was already used by an event emitted within
    ``dedupe_window`` seconds before ``now`` is not written: its slot in the
    result holds the earlier event's id. ``dispatch`` pairs each dispatch job
    with the event ids it dispatches; a job none of whose events was written
    is not written either, nor is a due one while another due dispatch job
    waits unclaimed (the events join that one).

    Raises:
        DatabaseLocked: the write lock was not had within ``deadline`` seconds;
            nothing was written.
    """

    def write(conn: sqlite3.Connection) -> list[str]:
        ids, rows = new_events(events, lambda key: _recent_key(conn, key,
                                                               now - dedupe_window))
        if not rows:
            return ids
        jobs, owner = dispatch_owners(dispatch, {e.id for e in rows},
                                      _waiting_dispatch_job(conn, now), now)
        _insert_events(conn, rows, owner, now)
        transitions.enqueue(conn, jobs, now)
        return ids

    return db.write(write, deadline=deadline)


def _insert_events(conn: sqlite3.Connection, rows: Sequence[NewEvent], owner: Mapping[str, str],
                   now: float) -> None:
    # Many rows per statement, the key column only when an event has one (see
    # runner.store.sqlite.multirow); each event's dispatch job is set (dispatch_owners).
    if any(e.key is not None for e in rows):
        insert_rows(conn, "runner_event", _KEYED, [
            (e.id, e.name, e.data, e.key, now, e.source, owner.get(e.id)) for e in rows])
    else:
        insert_rows(conn, "runner_event", _UNKEYED, [
            (e.id, e.name, e.data, now, e.source, owner.get(e.id)) for e in rows])


_KEYED = ("id", "name", "data", "key", "emitted_at", "source", "dispatch_job")
_UNKEYED = ("id", "name", "data", "emitted_at", "source", "dispatch_job")


def _recent_key(conn: sqlite3.Connection, key: str, since: float) -> str | None:
    row = conn.execute(
        "SELECT id FROM runner_event INDEXED BY runner_event_key WHERE key = ? "
        "AND emitted_at > ? ORDER BY emitted_at DESC LIMIT 1", (key, since)).fetchone()
    return row[0] if row else None


def pending_events(db: Database, ids: Sequence[str]) -> list[EventRow]:
    """The events among ``ids`` that are still waiting for their dispatch."""
    rows: list[tuple] = []
    for start in range(0, len(ids), 500):
        chunk = tuple(ids[start:start + 500])
        rows += db.query(f"SELECT {_COLUMNS} FROM runner_event WHERE status = 'pending' AND "
                         f"id IN ({','.join('?' * len(chunk))})", chunk)
    return [EventRow(*row) for row in rows]


def due_pending_events(db: Database, *, now: float, limit: int) -> list[EventRow]:
    """The oldest undispatched events whose dispatch job is due (not delayed)."""
    rows = db.query(
        f"SELECT {', '.join('e.' + c for c in EventRow.__dataclass_fields__)} "
        "FROM runner_event e INDEXED BY runner_event_pending "
        "JOIN runner_job j ON j.id = e.dispatch_job WHERE e.status = 'pending' "
        "AND j.run_at <= ? ORDER BY e.emitted_at LIMIT ?", (now, limit))
    return [EventRow(*row) for row in rows]


def fan_out(db: Database, deliveries: Mapping[str, Sequence[NewJob]], *,
            settle: Sequence[str] = (), now: float | None = None) -> dict[str, int]:
    """Dispatch pending events: insert their handler jobs and mark them, in one transaction.

    Each event moves ``pending`` → ``dispatched`` (or ``unhandled`` when it has
    no jobs) with a compare-and-set, so a dispatch that runs twice (its worker
    died after the commit) writes nothing the second time. For the events in
    ``settle`` that this call dispatched, their own single-event dispatch job
    (whose id is the event id) is marked completed if no worker has claimed it.

    Returns:
        event id → handler jobs written, for the events this call dispatched.
    """
    at = time.time() if now is None else now

    def write(conn: sqlite3.Connection) -> dict[str, int]:
        done, jobs = mark_dispatched(deliveries, deliveries, lambda i, status, n: bool(
            conn.execute("UPDATE runner_event SET status = ?, dispatched_at = ?, handlers = ?, "
                         "deliveries = 1 WHERE id = ? AND status = 'pending'",
                         (status, at, n, i)).rowcount))
        transitions.enqueue(conn, jobs, at)
        swept = [i for i in settle if i in done]
        if swept:
            transitions.settle_dispatch(conn, swept, now=at)
        return done

    return db.write(write)


def add_deliveries(db: Database, event_id: str, jobs: Sequence[NewJob], *,
                   now: float | None = None, only_dead: bool = False) -> int:
    """Replay: insert new handler jobs linked to an event, counting the delivery.

    Not written: a job whose id exists (the same replay ran before, its worker died
    after this commit) and, with ``only_dead``, a job whose handler's newest job of
    the event is not dead. Read and written in one write transaction, so replays
    running at once deliver to a failed handler once. Returns how many were written.
    """
    at = time.time() if now is None else now

    def write(conn: sqlite3.Connection) -> int:
        if not jobs:
            return 0
        written = {row[0] for row in conn.execute(
            f"SELECT id FROM runner_job WHERE id IN ({','.join('?' * len(jobs))})",
            [j.id for j in jobs])}
        newest = dict(conn.execute(
            "SELECT task, state FROM (SELECT task, state, row_number() OVER (PARTITION BY "
            "task ORDER BY created_at DESC, rowid DESC) AS newest FROM runner_job "
            "INDEXED BY runner_job_event WHERE event_id = ?) WHERE newest = 1",
            (event_id,)).fetchall()) if only_dead else {}
        new = replay_jobs(jobs, written, newest, only_dead)
        if not new:
            return 0
        conn.execute(
            "UPDATE runner_event SET deliveries = deliveries + 1, handlers = max(handlers, ?), "
            "status = 'dispatched', dispatched_at = coalesce(dispatched_at, ?) WHERE id = ?",
            (len(new), at, event_id))
        transitions.enqueue(conn, new, at)
        return len(new)

    return db.write(write)


def get_event(db: Database, event_id: str) -> EventRow:
    """One event by id, or by a unique start or end of its id.

    Raises:
        EventNotFound: no event, or the prefix is ambiguous.
    """
    return found_event(lambda: lookup_id(db, "runner_event", _COLUMNS, event_id), event_id)


def event_of_job(db: Database, job_id: str) -> EventRow | None:
    """The event a job was created for, or None."""
    rows = db.query(f"SELECT {', '.join('e.' + c for c in EventRow.__dataclass_fields__)} "
                    "FROM runner_job j JOIN runner_event e ON e.id = j.event_id "
                    "WHERE j.id = ?", (job_id,))
    return EventRow(*rows[0]) if rows else None


def list_events(db: Database, *, pattern: str | None = None, since: float | None = None,
                status: str | None = None, limit: int = 100) -> list[EventRow]:
    """Events newest first, filtered by name pattern, emit time and status."""
    clauses, params = ["emitted_at >= ?"], [since if since is not None else 0.0]
    if status:
        clauses.append("status = ?")
        params.append(status)
    literal = literal_prefix(pattern)
    if literal:
        # Narrow in SQL by the pattern's literal head; the wildcards are matched below.
        clauses.append("(name = ? OR substr(name, 1, ?) = ?)")
        params += [literal, len(literal) + 1, literal + "."]
    return newest_events(lambda before: db.query(
        f"SELECT {_COLUMNS} FROM runner_event WHERE {' AND '.join(clauses)} "
        f"AND emitted_at < ? ORDER BY emitted_at DESC LIMIT {PAGE}", [*params, before]),
        pattern, limit)


def handler_outcomes(db: Database, event_ids: Sequence[str]) -> dict[str, list[HandlerOutcome]]:
    """Per event, each handler's outcome (from its newest linked job), by handler name."""
    rows: list[tuple] = []
    for start in range(0, len(event_ids), 500):
        chunk = tuple(event_ids[start:start + 500])
        rows += db.query(
            "SELECT event_id, task, state, id, attempt, count(*) OVER w, "
            "row_number() OVER (w ORDER BY created_at DESC, rowid DESC) AS newest "
            "FROM runner_job INDEXED BY runner_job_event "
            f"WHERE event_id IN ({','.join('?' * len(chunk))}) "
            "WINDOW w AS (PARTITION BY event_id, task)", chunk)
    return outcomes_of(event_ids, rows)


_PRUNABLE = ("SELECT e.id FROM runner_event e INDEXED BY runner_event_emitted "
             "WHERE e.emitted_at < ? AND e.status != 'pending' AND NOT EXISTS "
             f"(SELECT 1 FROM runner_job j WHERE j.event_id = e.id AND j.state IN {LIVE_SQL})")


def prune_events(db: Database, older_than_days: float, *, now: float | None = None,
                 batch: int = 1000, dry_run: bool = False) -> int:
    """Delete events emitted more than ``older_than_days`` ago; returns how many.

    Kept whatever their age: events still ``pending`` (never dispatched) and
    events with a handler job that is not finished. Linked jobs are left to the
    jobs' own retention. Deletes in short transactions of ``batch`` rows; with
    ``dry_run`` only counts.
    """
    cutoff = (time.time() if now is None else now) - older_than_days * 86400
    if dry_run:
        return db.query(f"SELECT count(*) FROM ({_PRUNABLE})", (cutoff,))[0][0]
    return delete_in_batches(lambda: db.write(lambda conn: conn.execute(
        f"DELETE FROM runner_event WHERE id IN ({_PRUNABLE} LIMIT ?)",
        (cutoff, batch)).rowcount), batch)


def count_events(db: Database, status: str | None = None) -> int:
    """How many events are stored (with ``status``, when given)."""
    if status is None:
        return db.query("SELECT count(*) FROM runner_event")[0][0]
    return db.query("SELECT count(*) FROM runner_event WHERE status = ?", (status,))[0][0]


def count_unhandled(db: Database) -> int:
    """Events no handler took."""
    hint = index_hint(db, "runner_event_unhandled")
    return db.query(f"SELECT count(*) FROM runner_event{hint} "
                    "WHERE status = 'unhandled'")[0][0]


def unhandled_events(db: Database, *, limit: int = 200) -> list[EventRow]:
    """Events no handler took, newest first."""
    hint = index_hint(db, "runner_event_unhandled")
    rows = db.query(f"SELECT {_COLUMNS} FROM runner_event{hint} "
                    "WHERE status = 'unhandled' ORDER BY emitted_at DESC LIMIT ?", (limit,))
    return [EventRow(*row) for row in rows]
