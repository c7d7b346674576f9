"""SQLite: the metrics scrape's snapshot.

The SQLite side of :mod:`runner.store.metrics_scrape`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from runner.store.sqlite import scrape_reads as _scrape
from runner.store.sqlite.db import Database
from runner.store.views import DatabaseSnapshot


class SqliteScrape:
    """:class:`runner.store.metrics_scrape.ScrapeStore` on a SQLite file."""

    db: Database

    def read_snapshot(self, *, now: float | None = None,
                      heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
        return _scrape.read_database(self.db, now=now, heartbeat_limit=heartbeat_limit)

    def waiting_queues(self) -> list[str]:
        return _scrape.waiting_queues(self.db)
