"""PostgreSQL: the metrics scrape's snapshot.

The PostgreSQL side of :mod:`runner.store.metrics_scrape`, a mixin of
:class:`runner.store.postgres.PostgresStore` (its ``db`` is the
:class:`~runner.store.postgres.connection.PgDatabase`).
"""

from __future__ import annotations

from runner.store.postgres import panels as _panels
from runner.store.postgres.connection import PgDatabase
from runner.store.views import DatabaseSnapshot


class PostgresScrape:
    """:class:`runner.store.metrics_scrape.ScrapeStore` on a PostgreSQL database."""

    db: PgDatabase

    def read_snapshot(self, *, now: float | None = None,
                      heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
        return _panels.read_snapshot(self.db, now=now, heartbeat_limit=heartbeat_limit)

    def waiting_queues(self) -> list[str]:
        return _panels.waiting_queues(self.db)
