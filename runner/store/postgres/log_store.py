"""PostgreSQL: job and process logs.

The PostgreSQL side of :mod:`runner.store.log_store`, a mixin of
:class:`runner.store.postgres.PostgresStore` (its ``db`` is the
:class:`~runner.store.postgres.connection.PgDatabase`).
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.store.postgres import logs as _logs
from runner.store.postgres.connection import PgDatabase
from runner.store.rows import LogFilter, LogRow, LogTuple


class PostgresLogs:
    """:class:`runner.store.log_store.LogsStore` on a PostgreSQL database."""

    db: PgDatabase

    def write_logs(self, rows: Sequence[LogTuple], *, trim_to: int = 0,
                   deadline: float = 5.0) -> None:
        return _logs.write_logs(self.db, rows, trim_to=trim_to, deadline=deadline)

    def read_logs(self, filters: LogFilter | None = None, *, after_id: int = 0,
                  limit: int = 200) -> list[LogRow]:
        return _logs.read_logs(self.db, filters, after_id=after_id, limit=limit)

    def tail_logs(self, *, after_id: int = 0, job_id: str | None = None, min_level: int = 0,
                  text: str | None = None, limit: int = 500) -> list[LogRow]:
        return _logs.tail_logs(self.db, after_id=after_id, job_id=job_id, min_level=min_level,
                               text=text, limit=limit)

    def job_log_bytes(self, job_id: str) -> int:
        return _logs.job_log_bytes(self.db, job_id)
