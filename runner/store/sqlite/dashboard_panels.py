"""SQLite: the dashboard's panels.

The SQLite side of :mod:`runner.store.dashboard_panels`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.store.rows import JobFilter
from runner.store.sqlite import dashboard_reads as _panels
from runner.store.sqlite.db import Database
from runner.store.views import (
    RECENT_SAMPLE,
    SUMMARY_DEAD_LIMIT,
    JobPage,
    PageKey,
    RunTimes,
    Summary,
    WorkerLoad,
)


class SqliteDashboard:
    """:class:`runner.store.dashboard_panels.DashboardStore` on a SQLite file."""

    db: Database

    def summary(self, now: float | None = None,
                rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None, *,
                done_last_minute: int | None = None, stale_after: float = 15.0,
                dead_limit: int = SUMMARY_DEAD_LIMIT, gone: Sequence[str] = ()) -> Summary:
        return _panels.summary(self.db, now, rates, done_last_minute=done_last_minute,
                               stale_after=stale_after, dead_limit=dead_limit, gone=gone)

    def live_worker_ids(self, now: float, stale_after: float) -> frozenset[str]:
        return _panels.live_worker_ids(self.db, now, stale_after)

    def stalled_count(self, now: float, stale_after: float, gone: Sequence[str] = ()) -> int:
        return _panels.stalled_count(self.db, now, stale_after, gone)

    def throughput(self, now: float | None = None, *,
                   minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return _panels.throughput(self.db, now, minutes=minutes)

    def recent_run_times(self, *, sample: int = RECENT_SAMPLE
                         ) -> tuple[RunTimes, dict[str, RunTimes]]:
        return _panels.recent_run_times(self.db, sample=sample)

    def worker_loads(self, *, include_stopped: bool = False) -> list[WorkerLoad]:
        return _panels.read_worker_loads(self.db, include_stopped=include_stopped)

    def keyset_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                    after: PageKey | None = None, oldest_first: bool = False,
                    sort: str = "newest", now: float | None = None) -> JobPage:
        return _panels.job_page(self.db, filters, limit=limit, after=after,
                                oldest_first=oldest_first, sort=sort, now=now)

    def page_key_at(self, at: float, filters: JobFilter | None = None, *,
                    oldest_first: bool = False) -> PageKey:
        return _panels.page_key_at(self.db, at, filters, oldest_first=oldest_first)
