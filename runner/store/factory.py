"""The backend of an open database: where a caller holding a handle gets its :class:`Store`.

One place to add a backend: a PostgreSQL or Redis handle maps to its store here.
"""

from __future__ import annotations

from runner.store.backend import Store
from runner.store.db import Database
from runner.store.sqlite import sqlite_store


def store_for(db: Database) -> Store:
    """The :class:`Store` that reads and writes ``db``."""
    return sqlite_store(db)
