"""PostgreSQL: events: the ``runner_event`` log, fan-out, outcomes and pruning.

The same rows and meaning as on SQLite. Fan-out is a compare-and-set of each
event's status (``pending`` → ``dispatched``), so a dispatch that runs twice,
on any host, writes its handler jobs once.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.event_store`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import psycopg

from runner.event_patterns import literal_prefix
from runner.store.batches import delete_in_batches
from runner.store.event_rows import (
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
from runner.store.postgres import copy_marks, transitions
from runner.store.postgres.connection import PgDatabase, lock_key
from runner.store.postgres.lookup import lookup_id
from runner.store.rows import DISPATCH_TASK
from runner.store.states import AVAILABLE_SQL, LIVE_SQL

_COLUMNS = ", ".join(EventRow.__dataclass_fields__)

_E_COLUMNS = ", ".join("e." + c for c in EventRow.__dataclass_fields__)


def _waiting_dispatch_job(conn: psycopg.Connection, now: float) -> str | None:
    row = conn.execute(
        f"SELECT id FROM runner_job WHERE task = '{DISPATCH_TASK}' AND state = {AVAILABLE_SQL} "
        f"AND run_at <= %s LIMIT 1", (now,)).fetchone()
    return row[0] if row else None


def _recent_key(conn: psycopg.Connection, key: str, since: float) -> str | None:
    row = conn.execute(
        "SELECT id FROM runner_event WHERE key = %s AND emitted_at > %s "
        "ORDER BY emitted_at DESC LIMIT 1", (key, since)).fetchone()
    return row[0] if row else None

_PRUNABLE = ("SELECT e.id FROM runner_event e WHERE e.emitted_at < %s AND e.status != 'pending' "
             "AND NOT EXISTS (SELECT 1 FROM runner_job j WHERE j.event_id = e.id "
             f"AND j.state IN {LIVE_SQL})")


def prune_events(db: PgDatabase, older_than_days: float, *, now: float | None = None,
                 batch: int = 1000, dry_run: bool = False) -> int:
    """Delete events emitted more than ``older_than_days`` ago (kept: pending, or with a
    handler job not finished); returns how many. With ``dry_run`` only counts."""
    cutoff = (time.time() if now is None else now) - older_than_days * 86400
    if dry_run:
        return db.query(f"SELECT count(*) FROM ({_PRUNABLE}) old", (cutoff,))[0][0]
    def delete(conn: psycopg.Connection) -> int:
        gone = conn.execute(f"DELETE FROM runner_event WHERE id IN ({_PRUNABLE} LIMIT %s)",
                            (cutoff, batch)).rowcount
        if gone:
            copy_marks.pruned(conn, "events")
        return gone

    return delete_in_batches(lambda: db.write(delete), batch)


class PostgresEvents:
    """:class:`runner.store.event_store.EventsStore` on a PostgreSQL database."""

    db: PgDatabase

    def insert_events(self, events: Sequence[NewEvent],
                      dispatch: Sequence[tuple[NewJob, Sequence[str]]], *, now: float,
                      dedupe_window: float, deadline: float) -> list[str]:
        """Write events and their dispatch jobs in one transaction; returns the event ids.

        A keyed event whose key was used within ``dedupe_window`` seconds is not
        written: its slot holds the earlier event's id. Keys are serialised with a
        transaction-level advisory lock per key, so two hosts emitting the same key
        at once write one event.
        """
        db = self.db
        channel = db.channel

        def write(conn: psycopg.Connection) -> list[str]:
            keys = sorted({e.key for e in events if e.key is not None})
            for key in keys:  # one at a time, in order: two emitters never lock crosswise
                conn.execute(f"SELECT pg_advisory_xact_lock({lock_key('%s')})",
                             (f"runner event key {key}",))
            ids, rows = new_events(events, lambda key: _recent_key(conn, key,
                                                                   now - dedupe_window))
            if not rows:
                return ids
            jobs, owner = dispatch_owners(dispatch, {e.id for e in rows},
                                          _waiting_dispatch_job(conn, now), now)
            conn.execute(
                "INSERT INTO runner_event (id, name, data, key, emitted_at, source, dispatch_job) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
                "%s::float8[], %s::text[], %s::text[])",
                ([e.id for e in rows], [e.name for e in rows], [e.data for e in rows],
                 [e.key for e in rows], [now] * len(rows), [e.source for e in rows],
                 [owner.get(e.id) for e in rows]))
            transitions.enqueue(conn, jobs, now, channel=channel)
            return ids

        return db.write(write, deadline=deadline)

    def pending_events(self, ids: Sequence[str]) -> list[EventRow]:
        """The events among ``ids`` that are still waiting for their dispatch."""
        db = self.db
        rows = db.query(f"SELECT {_COLUMNS} FROM runner_event WHERE status = 'pending' "
                        f"AND id = ANY(%s)", (list(ids),))
        return [EventRow(*row) for row in rows]

    def due_pending_events(self, *, now: float, limit: int) -> list[EventRow]:
        """The oldest undispatched events whose dispatch job is due (not delayed)."""
        db = self.db
        rows = db.query(
            f"SELECT {_E_COLUMNS} FROM runner_event e JOIN runner_job j ON j.id = e.dispatch_job "
            "WHERE e.status = 'pending' AND j.run_at <= %s ORDER BY e.emitted_at LIMIT %s",
            (now, limit))
        return [EventRow(*row) for row in rows]

    def fan_out(self, deliveries: Mapping[str, Sequence[NewJob]], *, settle: Sequence[str] = (),
                now: float | None = None) -> dict[str, int]:
        """Dispatch pending events: insert their handler jobs and mark them, in one transaction."""
        db = self.db
        at = time.time() if now is None else now
        channel = db.channel

        def write(conn: psycopg.Connection) -> dict[str, int]:
            done, jobs = mark_dispatched(sorted(deliveries), deliveries, lambda i, status, n: bool(
                conn.execute("UPDATE runner_event SET status = %s, dispatched_at = %s, "
                             "handlers = %s, deliveries = 1 WHERE id = %s AND status = 'pending'",
                             (status, at, n, i)).rowcount))
            transitions.enqueue(conn, jobs, at, channel=channel)
            swept = [i for i in settle if i in done]
            if swept:
                transitions.settle_dispatch(conn, swept, now=at)
            return done

        return db.write(write)

    def add_deliveries(self, event_id: str, jobs: Sequence[NewJob], *,
                       now: float | None = None, only_dead: bool = False) -> int:
        """Replay: insert new handler jobs linked to an event, counting the delivery.

        Not written: a job whose id exists (the replay ran before) and, with
        ``only_dead``, one whose handler's newest job of the event is not dead.
        Replays of one event take a lock on it first: one that waited reads the jobs
        the other wrote, so replays running at once deliver to a failed handler once.
        """
        db = self.db
        at = time.time() if now is None else now
        channel = db.channel

        def write(conn: psycopg.Connection) -> int:
            if not jobs:
                return 0
            conn.execute(f"SELECT pg_advisory_xact_lock({lock_key('%s')})",
                         (f"runner event replay {event_id}",))
            written = {row[0] for row in conn.execute(
                "SELECT id FROM runner_job WHERE id = ANY(%s)", ([j.id for j in jobs],))}
            newest = dict(conn.execute(
                "SELECT DISTINCT ON (task) task, state FROM runner_job WHERE event_id = %s "
                "ORDER BY task, created_at DESC, seq DESC", (event_id,)).fetchall()
                ) if only_dead else {}
            new = replay_jobs(jobs, written, newest, only_dead)
            if not new:
                return 0
            conn.execute(
                "UPDATE runner_event SET deliveries = deliveries + 1, "
                "handlers = greatest(handlers, %s), status = 'dispatched', "
                "dispatched_at = coalesce(dispatched_at, %s) WHERE id = %s",
                (len(new), at, event_id))
            transitions.enqueue(conn, new, at, channel=channel)
            return len(new)

        return db.write(write)

    def get_event(self, event_id: str) -> EventRow:
        """One event by id, or by a unique start or end of its id.

        Raises:
            EventNotFound: no event, or the prefix is ambiguous.
        """
        db = self.db
        return found_event(lambda: lookup_id(db, "runner_event", _COLUMNS, event_id), event_id)

    def event_of_job(self, job_id: str) -> EventRow | None:
        """The event a job was created for, or None."""
        db = self.db
        rows = db.query(f"SELECT {_E_COLUMNS} FROM runner_job j JOIN runner_event e "
                        "ON e.id = j.event_id WHERE j.id = %s", (job_id,))
        return EventRow(*rows[0]) if rows else None

    def list_events(self, *, pattern: str | None = None, since: float | None = None,
                    status: str | None = None, limit: int = 100) -> list[EventRow]:
        """Events newest first, filtered by name pattern, emit time and status."""
        db = self.db
        clauses, params = ["emitted_at >= %s"], [since if since is not None else 0.0]
        if status:
            clauses.append("status = %s")
            params.append(status)
        literal = literal_prefix(pattern)
        if literal:
            clauses.append("(name = %s OR left(name, %s) = %s)")
            params += [literal, len(literal) + 1, literal + "."]
        return newest_events(lambda before: db.query(
            f"SELECT {_COLUMNS} FROM runner_event WHERE {' AND '.join(clauses)} "
            f"AND emitted_at < %s ORDER BY emitted_at DESC LIMIT {PAGE}", [*params, before]),
            pattern, limit)

    def handler_outcomes(self, event_ids: Sequence[str]) -> dict[str, list[HandlerOutcome]]:
        """Per event, each handler's outcome (from its newest linked job), by handler name."""
        db = self.db
        return outcomes_of(event_ids, db.query(
            "SELECT event_id, task, state, id, attempt, count(*) OVER w, "
            "row_number() OVER (w ORDER BY created_at DESC, seq DESC) AS newest "
            "FROM runner_job WHERE event_id = ANY(%s) "
            "WINDOW w AS (PARTITION BY event_id, task)", (list(event_ids),)))

    def prune_events(self, older_than_days: float, *, now: float | None = None, batch: int = 1000,
                     dry_run: bool = False) -> int:
        return prune_events(self.db, older_than_days, now=now, batch=batch,
                                    dry_run=dry_run)

    def count_events(self, status: str | None = None) -> int:
        """How many events are stored (with ``status``, when given)."""
        db = self.db
        if status is None:
            return db.query("SELECT count(*) FROM runner_event")[0][0]
        return db.query("SELECT count(*) FROM runner_event WHERE status = %s", (status,))[0][0]

    def count_unhandled(self) -> int:
        return self.count_events(EventStatus.UNHANDLED)

    def unhandled_events(self, *, limit: int = 200) -> list[EventRow]:
        """Events no handler took, newest first."""
        db = self.db
        rows = db.query(f"SELECT {_COLUMNS} FROM runner_event WHERE status = 'unhandled' "
                        "ORDER BY emitted_at DESC LIMIT %s", (limit,))
        return [EventRow(*row) for row in rows]
