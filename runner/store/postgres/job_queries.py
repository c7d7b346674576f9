"""PostgreSQL: reads of jobs and workers for the CLI.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.job_queries`.
"""

from __future__ import annotations

from runner.store.postgres import reads as _reads
from runner.store.postgres.connection import PgDatabase
from runner.store.rows import AttemptError, JobFilter, JobRow, QueueDepth, WorkerRow


class PostgresQueries:
    """:class:`runner.store.job_queries.QueriesStore` on a PostgreSQL database."""

    db: PgDatabase

    def list_jobs(self, filters: JobFilter | None = None, *, limit: int = 100,
                  offset: int = 0) -> list[JobRow]:
        return _reads.list_jobs(self.db, filters, limit=limit, offset=offset)

    def count_jobs(self, filters: JobFilter | None = None) -> int:
        return _reads.count_jobs(self.db, filters)

    def job_ids(self, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
        return _reads.job_ids(self.db, filters, limit=limit)

    def get_job(self, job_id: str) -> JobRow:
        return _reads.get_job(self.db, job_id)

    def job_errors(self, job_id: str) -> list[AttemptError]:
        return _reads.job_errors(self.db, job_id)

    def counts_by_state(self) -> dict[str, int]:
        return _reads.counts_by_state(self.db)

    def queue_depths(self, now: float | None = None) -> list[QueueDepth]:
        return _reads.queue_depths(self.db, now)

    def list_workers(self, *, include_stopped: bool = False) -> list[WorkerRow]:
        return _reads.list_workers(self.db, include_stopped=include_stopped)

    def stored_result(self, job_id: str) -> bytes | None:
        return _reads.stored_result(self.db, job_id)
