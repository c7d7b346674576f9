"""SQLite: the CLI's reads of jobs and workers.

The SQLite side of :mod:`runner.store.job_queries`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from runner.store.rows import AttemptError, JobFilter, JobRow, QueueDepth, WorkerRow
from runner.store.sqlite import queries as _queries
from runner.store.sqlite.db import Database


class SqliteQueries:
    """:class:`runner.store.job_queries.QueriesStore` on a SQLite file."""

    db: Database

    def list_jobs(self, filters: JobFilter | None = None, *, limit: int = 100,
                  offset: int = 0) -> list[JobRow]:
        return _queries.list_jobs(self.db, filters, limit=limit, offset=offset)

    def count_jobs(self, filters: JobFilter | None = None) -> int:
        return _queries.count_jobs(self.db, filters)

    def job_ids(self, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
        return _queries.job_ids(self.db, filters, limit=limit)

    def get_job(self, job_id: str) -> JobRow:
        return _queries.get_job(self.db, job_id)

    def job_errors(self, job_id: str) -> list[AttemptError]:
        return _queries.job_errors(self.db, job_id)

    def counts_by_state(self) -> dict[str, int]:
        return _queries.counts_by_state(self.db)

    def queue_depths(self, now: float | None = None) -> list[QueueDepth]:
        return _queries.queue_depths(self.db, now)

    def list_workers(self, *, include_stopped: bool = False) -> list[WorkerRow]:
        return _queries.list_workers(self.db, include_stopped=include_stopped)

    def stored_result(self, job_id: str) -> bytes | None:
        return _queries.stored_result(self.db, job_id)

    def job_payload(self, job_id: str) -> bytes | None:
        return _queries.job_payload(self.db, job_id)
