"""Events as the dashboard shows them; empty on a database without events."""

from __future__ import annotations

from dataclasses import dataclass

from runner.store.backend import Store
from runner.store.event_rows import EventRow, HandlerOutcome


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


def unhandled_event_count(store: Store) -> int:
    """Events no handler took (0 without the table)."""
    if not store.has_table("runner_event"):
        return 0
    return store.count_unhandled()


def event_views(store: Store, *, unhandled_only: bool = False,
                limit: int = 200) -> list[EventView]:
    """Recent events, newest first, with each handler's outcome (empty without the table)."""
    if not store.has_table("runner_event"):
        return []
    if unhandled_only:
        events = store.unhandled_events(limit=limit)
    else:
        events = store.list_events(limit=limit)
    outcomes = store.handler_outcomes([e.id for e in events])
    return [EventView(e.id, e.name, e.emitted_at, e.status, e.source, e.deliveries,
                      tuple((o.handler, o.outcome) for o in outcomes.get(e.id, [])))
            for e in events]


@dataclass(frozen=True)
class EventDetail:
    """One event with its payload and each handler's outcome."""

    event: EventRow
    outcomes: list[HandlerOutcome]


def event_detail(store: Store, event_id: str) -> EventDetail:
    """An event by id (or a unique part of one) with its handlers' outcomes.

    Raises:
        EventNotFound: no such event.
    """
    event = store.get_event(event_id)
    return EventDetail(event, store.handler_outcomes([event.id]).get(event.id, []))
