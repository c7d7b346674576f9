"""Events as the dashboard shows them; empty on a database without events."""

from __future__ import annotations

from dataclasses import dataclass

from runner.readmodel.dashboard import has_table, index_hint
from runner.store import events as event_store
from runner.store.db import Database


@dataclass(frozen=True)
class EventView:
    """One emitted event and what each handler made of it."""

    id: str
    name: str
    emitted_at: float
    status: str
    source: str | None
    deliveries: int
    outcomes: tuple[tuple[str, str], ...]
    """(handler, outcome) pairs: pending, running, completed, dead, cancelled."""


def unhandled_event_count(db: Database) -> int:
    """Events no handler took (0 without the table)."""
    if not has_table(db, "runner_event"):
        return 0
    hint = index_hint(db, "runner_event_unhandled")
    return db.query(f"SELECT count(*) FROM runner_event{hint} "
                    "WHERE status = 'unhandled'")[0][0]


def event_views(db: Database, *, unhandled_only: bool = False,
                limit: int = 200) -> list[EventView]:
    """Recent events, newest first, with each handler's outcome (empty without the table)."""
    if not has_table(db, "runner_event"):
        return []
    if unhandled_only:
        columns = ", ".join(event_store.EventRow.__dataclass_fields__)
        hint = index_hint(db, "runner_event_unhandled")
        rows = db.query(f"SELECT {columns} FROM runner_event{hint} "
                        "WHERE status = 'unhandled' ORDER BY emitted_at DESC LIMIT ?", (limit,))
        events = [event_store.EventRow(*row) for row in rows]
    else:
        events = event_store.list_events(db, limit=limit)
    outcomes = event_store.handler_outcomes(db, [e.id for e in events])
    return [EventView(e.id, e.name, e.emitted_at, e.status, e.source, e.deliveries,
                      tuple((o.handler, o.outcome) for o in outcomes.get(e.id, [])))
            for e in events]


@dataclass(frozen=True)
class EventDetail:
    """One event with its payload and each handler's outcome."""

    event: event_store.EventRow
    outcomes: list[event_store.HandlerOutcome]


def event_detail(db: Database, event_id: str) -> EventDetail:
    """An event by id (or a unique part of one) with its handlers' outcomes.

    Raises:
        EventNotFound: no such event.
    """
    event = event_store.get_event(db, event_id)
    return EventDetail(event, event_store.handler_outcomes(db, [event.id]).get(event.id, []))
