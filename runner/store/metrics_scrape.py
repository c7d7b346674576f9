"""The metrics scrape in the storage seam: one bounded snapshot of the database.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from typing import Protocol

from runner.store.views import DatabaseSnapshot


class ScrapeStore(Protocol):
    """The database-wide figures of a Prometheus scrape."""

    def read_snapshot(self, *, now: float | None = None,
                      heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
        """The database-wide figures of a scrape (cost bounded by tasks x queues)."""
        ...

    def waiting_queues(self) -> list[str]:
        """Queues with waiting jobs."""
        ...
