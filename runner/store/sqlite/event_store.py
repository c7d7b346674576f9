"""SQLite: events, their dispatch and fan-out.

The SQLite side of :mod:`runner.store.event_store`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from runner.store.event_rows import EventRow, HandlerOutcome, NewEvent
from runner.store.job_rows import NewJob
from runner.store.sqlite import events as _events
from runner.store.sqlite.db import Database


class SqliteEvents:
    """:class:`runner.store.event_store.EventsStore` on a SQLite file."""

    db: Database

    def insert_events(self, events: Sequence[NewEvent],
                      dispatch: Sequence[tuple[NewJob, Sequence[str]]], *, now: float,
                      dedupe_window: float, deadline: float) -> list[str]:
        return _events.insert_events(self.db, events, dispatch, now=now,
                                     dedupe_window=dedupe_window, deadline=deadline)

    def pending_events(self, ids: Sequence[str]) -> list[EventRow]:
        return _events.pending_events(self.db, ids)

    def due_pending_events(self, *, now: float, limit: int) -> list[EventRow]:
        return _events.due_pending_events(self.db, now=now, limit=limit)

    def fan_out(self, deliveries: Mapping[str, Sequence[NewJob]], *, settle: Sequence[str] = (),
                now: float | None = None) -> dict[str, int]:
        return _events.fan_out(self.db, deliveries, settle=settle, now=now)

    def add_deliveries(self, event_id: str, jobs: Sequence[NewJob], *,
                       now: float | None = None, only_dead: bool = False) -> int:
        return _events.add_deliveries(self.db, event_id, jobs, now=now, only_dead=only_dead)

    def get_event(self, event_id: str) -> EventRow:
        return _events.get_event(self.db, event_id)

    def event_of_job(self, job_id: str) -> EventRow | None:
        return _events.event_of_job(self.db, job_id)

    def list_events(self, *, pattern: str | None = None, since: float | None = None,
                    status: str | None = None, limit: int = 100) -> list[EventRow]:
        return _events.list_events(self.db, pattern=pattern, since=since, status=status,
                                   limit=limit)

    def handler_outcomes(self, event_ids: Sequence[str]) -> dict[str, list[HandlerOutcome]]:
        return _events.handler_outcomes(self.db, event_ids)

    def prune_events(self, older_than_days: float, *, now: float | None = None, batch: int = 1000,
                     dry_run: bool = False) -> int:
        return _events.prune_events(self.db, older_than_days, now=now, batch=batch,
                                    dry_run=dry_run)

    def count_events(self, status: str | None = None) -> int:
        return _events.count_events(self.db, status)

    def count_unhandled(self) -> int:
        return _events.count_unhandled(self.db)

    def unhandled_events(self, *, limit: int = 200) -> list[EventRow]:
        return _events.unhandled_events(self.db, limit=limit)
