"""The dashboard's panels in the storage seam: summary, loads, keyset pages.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from runner.store.rows import JobFilter
from runner.store.views import (
    RECENT_SAMPLE,
    SUMMARY_DEAD_LIMIT,
    JobPage,
    PageKey,
    RunTimes,
    Summary,
    WorkerLoad,
)


class DashboardStore(Protocol):
    """Reads the dashboard polls, each bounded in cost."""

    def summary(self, now: float | None = None,
                rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None, *,
                done_last_minute: int | None = None, stale_after: float = 15.0,
                dead_limit: int = SUMMARY_DEAD_LIMIT, gone: Sequence[str] = ()) -> Summary:
        """Counts of the live states and dead jobs, rates and the latency.

        ``rates`` are the per-minute buckets of :meth:`throughput` when the caller
        has them; ``done_last_minute`` the completions of the last 60 s when the
        caller keeps them; a worker whose heartbeat is older than ``stale_after``
        is not alive, and the jobs it holds count as stalled, as do those of ``gone``
        (workers known dead whatever their heartbeat: this host's whose process is gone).
        Dead jobs are counted up to ``dead_limit`` (they grow with history;
        ``dead_capped`` says more exist).
        """
        ...

    def live_worker_ids(self, now: float, stale_after: float) -> frozenset[str]:
        """Workers registered as running whose heartbeat is younger than ``stale_after``."""
        ...

    def stalled_count(self, now: float, stale_after: float, gone: Sequence[str] = ()) -> int:
        """Executing jobs whose lease ran out or whose worker's heartbeat is stale or gone,
        or whose worker is one of ``gone``."""
        ...

    def throughput(self, now: float | None = None, *,
                   minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Completions and failed attempts per clock-aligned minute, oldest first."""
        ...

    def recent_run_times(self, *, sample: int = RECENT_SAMPLE
                         ) -> tuple[RunTimes, dict[str, RunTimes]]:
        """p50/p95 run time, overall and per queue, read from the newest ``sample``
        completions (a fixed cost)."""
        ...

    def worker_loads(self, *, include_stopped: bool = False) -> list[WorkerLoad]:
        """Registered workers with the jobs each holds a lease on."""
        ...

    def keyset_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                    after: PageKey | None = None, oldest_first: bool = False,
                    sort: str = "newest", now: float | None = None) -> JobPage:
        """One page of jobs in ``sort`` order (see ``JOB_SORTS``) from ``after`` on.

        Raises:
            ValueError: ``sort`` is not one of ``JOB_SORTS``.
        """
        ...

    def page_key_at(self, at: float, filters: JobFilter | None = None, *,
                    oldest_first: bool = False) -> PageKey:
        """The page key that starts a listing at the time ``at``."""
        ...
