"""Events as the dashboard shows them; empty on a database without events."""

from __future__ import annotations

from dataclasses import dataclass

from runner.store import events as event_store
from runner.store.db import Database
from runner.store.factory import store_for


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
    if not store_for(db).has_table("runner_event"):
        return 0
    return store_for(db).count_unhandled()


def event_views(db: Database, *, unhandled_only: bool = False,
                limit: int = 200) -> list[EventView]:
    """Recent events, newest first, with each handler's outcome (empty without the table)."""
    if not store_for(db).has_table("runner_event"):
        return []
    if unhandled_only:
        events = store_for(db).unhandled_events(limit=limit)
    else:
        events = store_for(db).list_events(limit=limit)
    outcomes = store_for(db).handler_outcomes([e.id for e in events])
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
    store = store_for(db)
    event = store.get_event(event_id)
    return EventDetail(event, store.handler_outcomes([event.id]).get(event.id, []))
