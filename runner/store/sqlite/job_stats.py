"""SQLite: counts, rates and failures.

The SQLite side of :mod:`runner.store.job_stats`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from runner.store.rows import FailureRow, JobFilter, JobRow
from runner.store.sqlite import stats as _stats
from runner.store.sqlite.db import Database
from runner.store.states import JobState
from runner.store.views import FAILURE_CAP


class SqliteStats:
    """:class:`runner.store.job_stats.StatsStore` on a SQLite file."""

    db: Database

    def count_in_state(self, state: JobState) -> int:
        return _stats.count_in_state(self.db, state)

    def completed_per_minute(self, start: float) -> list[tuple[int, int]]:
        return _stats.completed_per_minute(self.db, start)

    def failed_per_minute(self, start: float) -> list[tuple[int, int]]:
        return _stats.failed_per_minute(self.db, start)

    def finished_per_second(self, since: float,
                            until: float | None = None) -> tuple[dict[int, int], dict[int, int]]:
        return _stats.finished_per_second(self.db, since, until)

    def queue_oldest(self, now: float) -> list[tuple[str, float | None]]:
        return _stats.queue_oldest(self.db, now)

    def waiting_in_queue(self, queue: str) -> int:
        return _stats.waiting_in_queue(self.db, queue)

    def running_per_queue(self) -> dict[str, int]:
        return _stats.running_per_queue(self.db)

    def running_jobs(self) -> list[tuple[str | None, str, str, float | None]]:
        return _stats.running_jobs(self.db)

    def unfinished_by_queue(self) -> list[tuple[str, str, int]]:
        return _stats.unfinished_by_queue(self.db)

    def counts_by_queue_and_state(self) -> list[tuple[str, str, int]]:
        return _stats.counts_by_queue_and_state(self.db)

    def job_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                 offset: int = 0) -> list[JobRow]:
        return _stats.job_page(self.db, filters, limit=limit, offset=offset)

    def count_jobs_capped(self, filters: JobFilter | None = None, *,
                          cap: int = 10_000) -> tuple[int, bool]:
        return _stats.count_jobs_capped(self.db, filters, cap=cap)

    def failure_rows(self, *, limit: int = 200, cap: int = FAILURE_CAP) -> list[FailureRow]:
        return _stats.failure_rows(self.db, limit=limit, cap=cap)

    def failure_messages(self, error_type: str | None, *, prefix: str = "") -> list[str | None]:
        return _stats.failure_messages(self.db, error_type, prefix=prefix)

    def failure_signature(self, *, cap: int = FAILURE_CAP) -> tuple[int, int]:
        return _stats.failure_signature(self.db, cap=cap)

    def completions_since(self, since: float) -> list[tuple[str, str, float | None, float]]:
        return _stats.completions_since(self.db, since)

    def failed_attempts_since(self, since: float) -> list[tuple[str, str, float, int]]:
        return _stats.failed_attempts_since(self.db, since)

    def dead_by_task(self, since: float) -> list[tuple[str, str, int | None, int]]:
        return _stats.dead_by_task(self.db, since)

    def active_schedule_fires(self) -> list[tuple[str, float | None]]:
        return _stats.active_schedule_fires(self.db)
