"""Schedules as the dashboard shows them; empty on a database without schedules."""

from __future__ import annotations

import time
from dataclasses import dataclass

from runner.store.backend import Store
from runner.store.schedule_rows import ScheduleRow


@dataclass(frozen=True)
class ScheduleView:
    """One periodic schedule with its last outcome."""

    name: str
    task: str
    expression: str
    tz: str
    next_fire_at: float | None
    last_fired_at: float | None
    last_outcome: str | None
    lag: float | None
    paused: bool
    enabled: bool
    overdue: bool = False
    """The due fire is late (no scheduler running, or it is behind)."""
    skip_next: bool = False
    """The next slot will be skipped (skip-next)."""


def schedule_count(store: Store) -> int:
    """How many schedules the database holds (0 without the table)."""
    if not store.has_table("runner_schedule"):
        return 0
    return store.count_schedules()


def late_by(row: ScheduleRow, at: float) -> float | None:
    """Seconds the due fire of an active schedule is late at ``at`` (no scheduler made it
    yet: none runs, or it is behind); None when it is not overdue."""
    active = row.enabled and not row.paused and not row.orphaned
    if row.next_fire_at is None or not active or row.next_fire_at >= at - 1:
        return None
    return at - row.next_fire_at


def last_outcome(row: ScheduleRow) -> str | None:
    """How the schedule's last fire went: its job's state, or the skip when the last fire
    skipped its last slot (a skip records the fire's time as both the last fire and the
    last skip; the job named is then an earlier fire's). Slots skipped before one that ran
    (missed slots the misfire policy dropped, say) are dated by the slot, earlier than the
    fire: the run is the outcome."""
    if row.last_skip_at and (row.last_fired_at is None or row.last_skip_at >= row.last_fired_at):
        return f"skipped: {row.last_skip_reason}" if row.last_skip_reason else "skipped"
    return row.last_outcome


def schedule_views(store: Store, now: float | None = None) -> list[ScheduleView]:
    """Every schedule by name (empty without the table).

    ``lag`` is how late the due fire is when it is overdue, otherwise how late
    the last fire was.
    """
    if not store.has_table("runner_schedule"):
        return []
    at = time.time() if now is None else now
    views = []
    for row in store.list_schedules():
        late = late_by(row, at)
        overdue = late is not None
        lag = late if overdue else row.last_lag
        views.append(ScheduleView(row.name, row.task, row.expression, row.tz, row.next_fire_at,
                                  row.last_fired_at, last_outcome(row), lag, row.paused,
                                  row.enabled, overdue, row.skip_next))
    return views
