"""SQLite: retry, cancel and discard of existing jobs, in bulk.

The SQLite side of :mod:`runner.store.bulk_control`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.store.rows import JobFilter
from runner.store.sqlite import job_control as _job_control
from runner.store.sqlite.db import Database


class SqliteControl:
    """:class:`runner.store.bulk_control.ControlStore` on a SQLite file."""

    db: Database

    def retry_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        return _job_control.retry_jobs(self.db, job_ids, now=now)

    def cancel_jobs(self, job_ids: Sequence[str], *, now: float, by: str | None = None) -> int:
        return _job_control.cancel_jobs(self.db, job_ids, now=now, by=by)

    def discard_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        return _job_control.discard_jobs(self.db, job_ids, now=now)

    def redispatch_event(self, event_id: str, dispatch_job: str, *, now: float) -> None:
        return _job_control.redispatch_event(self.db, event_id, dispatch_job, now=now)

    def count_for_bulk(self, filters: JobFilter, states: Sequence[str]) -> tuple[int, int]:
        return _job_control.count_for_bulk(self.db, filters, states)

    def run_bulk(self, verb: str, filters: JobFilter, states: Sequence[str], *, up_to_rowid: int,
                 now: float, chunk: int = 500, by: str | None = None) -> int:
        return _job_control.run_bulk(self.db, verb, filters, states, up_to_rowid=up_to_rowid,
                                     now=now, chunk=chunk, by=by)

    def count_failure_group(self, error_type: str | None,
                            messages: Sequence[str | None]) -> tuple[int, int, float | None]:
        return _job_control.count_failure_group(self.db, error_type, messages)

    def run_failure_group(self, verb: str, error_type: str | None,
                          messages: Sequence[str | None], *, up_to_rowid: int,
                          failed_until: float | None, now: float, chunk: int = 500) -> int:
        return _job_control.run_failure_group(self.db, verb, error_type, messages,
                                              up_to_rowid=up_to_rowid,
                                              failed_until=failed_until, now=now, chunk=chunk)
