"""PostgreSQL: schedules: sync, due slots, firing once, runs.

The PostgreSQL side of :mod:`runner.store.schedule_store`, a mixin of
:class:`runner.store.postgres.PostgresStore` (its ``db`` is the
:class:`~runner.store.postgres.connection.PgDatabase`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runner.store.job_rows import NewJob
from runner.store.postgres import maintenance as _maintenance
from runner.store.postgres import schedules as _schedules
from runner.store.postgres.connection import PgDatabase
from runner.store.schedule_rows import FirePlan, FireResult, RunRow, ScheduleRow, SyncItem


class PostgresSchedules:
    """:class:`runner.store.schedule_store.SchedulesStore` on a PostgreSQL database."""

    db: PgDatabase

    def sync_schedules(self, items: Sequence[SyncItem], *, now: float,
                       orphan_others: bool = True) -> None:
        return _schedules.sync_schedules(self.db, items, now=now, orphan_others=orphan_others)

    def ensure_schedule(self, item: SyncItem, *, now: float) -> None:
        return _schedules.ensure_schedule(self.db, item, now=now)

    def due_schedules(self, now: float) -> list[tuple[str, float]]:
        return _schedules.due_schedules(self.db, now)

    def next_due(self) -> float | None:
        return _schedules.next_due(self.db)

    def fire(self, plans: Sequence[FirePlan], *, clock: Callable[[], float],
             queue_size: int) -> list[FireResult]:
        return _schedules.fire(self.db, plans, clock=clock, queue_size=queue_size)

    def record_manual_run(self, name: str, job: NewJob, *, now: float, queue_size: int) -> None:
        return _schedules.record_manual_run(self.db, name, job, now=now, queue_size=queue_size)

    def set_paused(self, name: str, paused: bool, *, now: float,
                   next_fire_at: float | None = None) -> bool:
        return _schedules.set_paused(self.db, name, paused, now=now, next_fire_at=next_fire_at)

    def set_skip_next(self, name: str, skip: bool = True, *, now: float) -> bool:
        return _schedules.set_skip_next(self.db, name, skip, now=now)

    def list_schedules(self, name: str | None = None) -> list[ScheduleRow]:
        return _schedules.list_schedules(self.db, name)

    def get_schedule(self, name: str) -> ScheduleRow | None:
        rows = _schedules.list_schedules(self.db, name)
        return rows[0] if rows else None

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[RunRow]:
        return _schedules.schedule_runs(self.db, name, limit=limit)

    def prune_runs(self, *, before: float) -> int:
        return _maintenance.prune_runs(self.db, before=before)

    def count_schedules(self) -> int:
        return self.db.query("SELECT count(*) FROM runner_schedule")[0][0]
