"""SQLite: schedules and their slots.

The SQLite side of :mod:`runner.store.schedule_store`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runner.store.job_rows import NewJob
from runner.store.schedule_rows import FirePlan, FireResult, RunRow, ScheduleRow, SyncItem
from runner.store.sqlite import schedules as _schedules
from runner.store.sqlite.db import Database


class SqliteSchedules:
    """:class:`runner.store.schedule_store.SchedulesStore` on a SQLite file."""

    db: Database

    def sync_schedules(self, items: Sequence[SyncItem], *, now: float,
                       orphan_others: bool = True) -> None:
        return _schedules.sync_schedules(self.db, items, now=now, orphan_others=orphan_others)

    def adopt_schedules(self, names: Sequence[str], *, now: float) -> list[str]:
        return _schedules.adopt_schedules(self.db, names, now=now)

    def ensure_schedule(self, item: SyncItem, *, now: float) -> None:
        return _schedules.ensure_schedule(self.db, item, now=now)

    def due_schedules(self, now: float) -> list[tuple[str, float]]:
        return _schedules.due_schedules(self.db, now)

    def next_due(self) -> float | None:
        return _schedules.next_due(self.db)

    def fire(self, plans: Sequence[FirePlan], *, clock: Callable[[], float],
             queue_size: int) -> list[FireResult]:
        return _schedules.fire(self.db, plans, clock=clock, queue_size=queue_size)

    def record_manual_run(self, name: str, job: NewJob, *, now: float,
                          queue_size: int) -> str | None:
        return _schedules.record_manual_run(self.db, name, job, now=now, queue_size=queue_size)

    def set_paused(self, name: str, paused: bool, *, now: float,
                   next_fire_at: float | None = None) -> bool:
        return _schedules.set_paused(self.db, name, paused, now=now, next_fire_at=next_fire_at)

    def set_skip_next(self, name: str, skip: bool = True, *, now: float) -> bool:
        return _schedules.set_skip_next(self.db, name, skip, now=now)

    def list_schedules(self, name: str | None = None) -> list[ScheduleRow]:
        return _schedules.list_schedules(self.db, name)

    def get_schedule(self, name: str) -> ScheduleRow | None:
        return _schedules.get_schedule(self.db, name)

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[RunRow]:
        return _schedules.schedule_runs(self.db, name, limit=limit)

    def prune_runs(self, *, before: float) -> int:
        return _schedules.prune_runs(self.db, before=before)

    def count_schedules(self) -> int:
        return _schedules.count_schedules(self.db)
