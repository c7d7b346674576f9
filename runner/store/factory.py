"""The backend of the settings, or of an open database: one place to add a backend.

``store_for`` maps a handle to its :class:`Store` (a store passes through, so
callers holding a Redis store where a SQLite handle used to be keep working);
``open_job_storage`` opens the huey storage of ``[worker] queue_type``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.config import Settings
from runner.store.backend import Store
from runner.store.db import Database
from runner.store.sqlite import sqlite_store

if TYPE_CHECKING:
    from runner.store.job_storage import JobStorage


def store_for(db: Database | Store) -> Store:
    """The :class:`Store` that reads and writes ``db`` (a store is its own)."""
    if isinstance(db, Database):
        return sqlite_store(db)
    return db


def open_store(settings: Settings) -> Store:
    """The store of the settings' backend (SQLite file or Redis), opened."""
    if settings.worker.queue_type == "redis":
        from runner.store.redis import RedisStore

        return RedisStore(settings.runner.redis_url, prefix=settings.runner.redis_prefix)
    from runner.store.db import open_database
    from runner.store.schema import prepare_database

    db = open_database(settings.database_path, settings.database,
                       file_mode=settings.runner.file_mode_bits)
    prepare_database(db)
    return sqlite_store(db)


def open_job_storage(name: str, settings: Settings) -> JobStorage:
    """huey's storage for the settings' backend."""
    if settings.worker.queue_type == "redis":
        from runner.store.redis.job_storage import RedisJobStorage

        return RedisJobStorage(name, settings=settings)
    from runner.store.job_storage import JobStorage

    return JobStorage(name, settings=settings)
