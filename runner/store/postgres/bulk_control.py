"""PostgreSQL: writes by hand: retry now, cancel, discard, bulk.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.bulk_control`.
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.store.batches import cancel_reason
from runner.store.postgres import maintenance as _maintenance
from runner.store.postgres import transitions as _transitions
from runner.store.postgres.connection import PgDatabase
from runner.store.rows import JobFilter


class PostgresControl:
    """:class:`runner.store.bulk_control.ControlStore` on a PostgreSQL database."""

    db: PgDatabase

    def retry_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        channel = self.db.channel

        def retry(conn, chunk: Sequence[str]) -> int:  # noqa: ANN001 - a psycopg connection
            _transitions.notify(conn, channel)
            return _transitions.retry_now(conn, chunk, now=now)

        return _maintenance.each_chunk(self.db, job_ids, retry)

    def cancel_jobs(self, job_ids: Sequence[str], *, now: float, by: str | None = None) -> int:
        return _maintenance.each_chunk(self.db, job_ids, lambda conn, chunk: _transitions.cancel(
            conn, chunk, now=now, reason=cancel_reason(by)))

    def discard_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        return _maintenance.each_chunk(self.db, job_ids, lambda conn, chunk: _transitions.cancel(
            conn, chunk, now=now, discard=True))

    def redispatch_event(self, event_id: str, dispatch_job: str, *, now: float) -> None:
        return _maintenance.redispatch_event(self.db, event_id, dispatch_job, now=now)

    def count_for_bulk(self, filters: JobFilter, states: Sequence[str]) -> tuple[int, int]:
        return _maintenance.count_for_bulk(self.db, filters, states)

    def run_bulk(self, verb: str, filters: JobFilter, states: Sequence[str], *, up_to_rowid: int,
                 now: float, chunk: int = 500, by: str | None = None) -> int:
        return _maintenance.run_bulk(self.db, verb, filters, states, up_to_rowid=up_to_rowid,
                                     now=now, chunk=chunk, by=by)

    def count_failure_group(self, error_type: str | None,
                            messages: Sequence[str | None]) -> tuple[int, int, float | None]:
        return _maintenance.count_failure_group(self.db, error_type, messages)

    def run_failure_group(self, verb: str, error_type: str | None,
                          messages: Sequence[str | None], *, up_to_rowid: int,
                          failed_until: float | None, now: float, chunk: int = 500) -> int:
        return _maintenance.run_failure_group(self.db, verb, error_type, messages,
                                              up_to_rowid=up_to_rowid,
                                              failed_until=failed_until, now=now, chunk=chunk)
