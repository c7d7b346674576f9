"""PostgreSQL: counts, rates and failure groups.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.job_stats`.
"""

from __future__ import annotations

from runner.store.postgres import reads as _reads
from runner.store.postgres.connection import PgDatabase
from runner.store.rows import FailureRow, JobFilter, JobRow
from runner.store.states import WAITING, JobState


class PostgresStats:
    """:class:`runner.store.job_stats.StatsStore` on a PostgreSQL database."""

    db: PgDatabase

    def count_in_state(self, state: JobState) -> int:
        return _reads.count_in_state(self.db, state)

    def completed_per_minute(self, start: float) -> list[tuple[int, int]]:
        return _reads.completed_per_minute(self.db, start)

    def failed_per_minute(self, start: float) -> list[tuple[int, int]]:
        return _reads.failed_per_minute(self.db, start)

    def finished_per_second(self, since: float,
                            until: float | None = None) -> tuple[dict[int, int], dict[int, int]]:
        return _reads.finished_per_second(self.db, since, until)

    def queue_oldest(self, now: float) -> list[tuple[str, float | None]]:
        return _reads.queue_oldest(self.db, now)

    def waiting_in_queue(self, queue: str) -> int:
        return _reads.waiting_in_queue(self.db, queue)

    def running_per_queue(self) -> dict[str, int]:
        return _reads.running_per_queue(self.db)

    def running_jobs(self) -> list[tuple[str | None, str, str, float | None]]:
        return _reads.running_jobs(self.db)

    def unfinished_by_queue(self) -> list[tuple[str, str, int]]:
        return self.db.query(
            "SELECT queue, state, count(*) FROM runner_job WHERE state = ANY(%s) "
            "GROUP BY queue, state ORDER BY queue, state",
            ([s.value for s in (*WAITING, JobState.EXECUTING, JobState.DEAD)],))

    def counts_by_queue_and_state(self) -> list[tuple[str, str, int]]:
        return _reads.counts_by_queue_and_state(self.db)

    def job_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                 offset: int = 0) -> list[JobRow]:
        return _reads.job_page(self.db, filters, limit=limit, offset=offset)

    def count_jobs_capped(self, filters: JobFilter | None = None, *,
                          cap: int = 10_000) -> tuple[int, bool]:
        return _reads.count_jobs_capped(self.db, filters, cap=cap)

    def failure_rows(self, *, limit: int = 200) -> list[FailureRow]:
        return _reads.failure_rows(self.db, limit=limit)

    def failure_group_ids(self, error_type: str | None, message: str | None, *,
                          limit: int = 100_000) -> list[str]:
        return _reads.failure_group_ids(self.db, error_type, message, limit=limit)

    def failure_signature(self) -> tuple[int, int]:
        return _reads.failure_signature(self.db)

    def completions_since(self, since: float) -> list[tuple[str, str, float | None, float]]:
        return _reads.completions_since(self.db, since)

    def failed_attempts_since(self, since: float) -> list[tuple[str, str, float, int]]:
        return _reads.failed_attempts_since(self.db, since)

    def dead_by_task(self, since: float) -> list[tuple[str, str, int | None, int]]:
        return _reads.dead_by_task(self.db, since)

    def active_schedule_fires(self) -> list[tuple[str, float | None]]:
        return _reads.active_schedule_fires(self.db)
