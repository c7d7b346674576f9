"""Schedules in the storage seam: definitions, due slots fired exactly once, runs.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from runner.store.job_rows import NewJob
from runner.store.schedule_rows import FirePlan, FireResult, RunRow, ScheduleRow, SyncItem


class SchedulesStore(Protocol):
    """Schedule definitions and their fired slots."""

    def sync_schedules(self, items: Sequence[SyncItem], *, now: float,
                       orphan_others: bool = True) -> None:
        """Upsert definitions; rows missing from ``items`` are marked orphaned (never deleted)."""
        ...

    def adopt_schedules(self, names: Sequence[str], *, now: float) -> list[str]:
        """Clear the orphaned mark of those of ``names`` that carry it, keeping their next
        fire time (a running scheduler defines them); returns those names, sorted."""
        ...

    def ensure_schedule(self, item: SyncItem, *, now: float) -> None:
        """Insert a schedule's row if there is none yet (control before the first sync)."""
        ...

    def due_schedules(self, now: float) -> list[tuple[str, float]]:
        """``(name, next_fire_at)`` of active schedules due at ``now``."""
        ...

    def next_due(self) -> float | None:
        """The earliest ``next_fire_at`` of an active schedule."""
        ...

    def fire(self, plans: Sequence[FirePlan], *, clock: Callable[[], float],
             queue_size: int) -> list[FireResult]:
        """Fire due schedules in one transaction (see module docstring); returns the outcomes."""
        ...

    def record_manual_run(self, name: str, job: NewJob, *, now: float,
                          queue_size: int) -> str | None:
        """Insert an extra run's job and slot record; the schedule's next fire is untouched.

        Returns the live job that holds the run's unique key (then nothing is written), or
        None."""
        ...

    def set_paused(self, name: str, paused: bool, *, now: float,
                   next_fire_at: float | None = None) -> bool:
        """Pause or resume; resuming sets ``next_fire_at`` (no catch-up for paused time)."""
        ...

    def set_skip_next(self, name: str, skip: bool = True, *, now: float) -> bool:
        """Ask to skip (or no longer skip) the next slot; False when there is no such schedule."""
        ...

    def list_schedules(self, name: str | None = None) -> list[ScheduleRow]:
        """Every schedule (or the one named), by name, with its last job's state."""
        ...

    def get_schedule(self, name: str) -> ScheduleRow | None:
        """One schedule, or None."""
        ...

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[RunRow]:
        """The most recent fired slots of a schedule, oldest first."""
        ...

    def prune_runs(self, *, before: float) -> int:
        """Delete slot records fired before ``before``; returns how many."""
        ...

    def count_schedules(self) -> int:
        """How many schedules the database holds."""
        ...
