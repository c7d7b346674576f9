"""The backend of an open database: where a caller holding a handle gets its :class:`Store`.

One place to add a backend: a PostgreSQL or Redis handle maps to its store here,
and the settings' ``queue_type`` picks the huey storage a runner opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.config import Settings
from runner.store.backend import Store
from runner.store.db import Database
from runner.store.postgres import PgDatabase, PostgresStore
from runner.store.sqlite import sqlite_store

if TYPE_CHECKING:
    from runner.store.job_storage import JobStorage


def store_for(db: Database | PgDatabase) -> Store:
    """The :class:`Store` that reads and writes ``db``."""
    if isinstance(db, PgDatabase):
        return PostgresStore(db)
    return sqlite_store(db)


def open_job_storage(name: str, settings: Settings) -> JobStorage:
    """The huey storage of the settings' backend (``queue_type``), its database prepared."""
    if settings.worker.queue_type == "postgres":
        from runner.store.postgres.huey_storage import PgJobStorage

        return PgJobStorage(name, settings=settings)
    from runner.store.job_storage import JobStorage

    return JobStorage(name, settings=settings)
