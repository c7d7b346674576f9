"""The SQLite backend of the storage seam: :class:`SqliteStore` over one jobs file.

Every SQLite statement lives in this package, in the module of its concern:
the job state machine (:mod:`.transitions`, with the tuned claim, ack and
enqueue), connections (:mod:`.db`), indexes and triggers (:mod:`.models`),
and the events, schedules, logs, workers, queries, stats, dashboard and
scrape reads, key/value, counters, leases and maintenance modules. Each method
of the store is one transaction (``BEGIN IMMEDIATE``) or one read.

:class:`SqliteStore` is the union of one mixin per part of the protocol, named
as the protocol's module: :mod:`.handle`, :mod:`.job_machine`,
:mod:`.flow_control`, :mod:`.worker_presence`, :mod:`.schedule_store`,
:mod:`.event_store`, :mod:`.log_store`, :mod:`.job_queries`,
:mod:`.bulk_control`, :mod:`.job_stats`, :mod:`.dashboard_panels`,
:mod:`.metrics_scrape`, :mod:`.key_values` and :mod:`.upkeep`. The backend
registers itself as :data:`BACKEND` (see :mod:`runner.store.factory`).
"""

from __future__ import annotations

import sqlite3
import threading

import peewee

from runner.store.backend import Backend, StoreRequest
from runner.store.sqlite.bulk_control import SqliteControl
from runner.store.sqlite.dashboard_panels import SqliteDashboard
from runner.store.sqlite.db import Database, open_database
from runner.store.sqlite.event_store import SqliteEvents
from runner.store.sqlite.flow_control import SqliteFlowControl
from runner.store.sqlite.handle import SqliteHandle
from runner.store.sqlite.job_machine import SqliteJobs
from runner.store.sqlite.job_queries import SqliteQueries
from runner.store.sqlite.job_stats import SqliteStats
from runner.store.sqlite.key_values import SqliteKeyValues
from runner.store.sqlite.log_store import SqliteLogs
from runner.store.sqlite.metrics_scrape import SqliteScrape
from runner.store.sqlite.schedule_store import SqliteSchedules
from runner.store.sqlite.schema import prepare_database
from runner.store.sqlite.upkeep import SqliteUpkeep
from runner.store.sqlite.worker_presence import SqliteWorkers


class SqliteStore(SqliteHandle, SqliteJobs, SqliteFlowControl, SqliteWorkers, SqliteSchedules,
                  SqliteEvents, SqliteLogs, SqliteQueries, SqliteControl, SqliteStats,
                  SqliteDashboard, SqliteScrape, SqliteKeyValues, SqliteUpkeep):
    """:class:`runner.store.backend.Store` on a SQLite file (see the module docstring)."""


_stores: dict[int, SqliteStore] = {}
_stores_lock = threading.Lock()


def sqlite_store(db: Database) -> SqliteStore:
    """The store of an open database (one per :class:`Database` object)."""
    store = _stores.get(id(db))
    if store is None or store.db is not db:
        with _stores_lock:
            store = _stores[id(db)] = SqliteStore(db)
    return store


def open_sqlite(request: StoreRequest) -> SqliteStore:
    """The store of a SQLite file; unless read-only, created and migrated on first open.

    The per-thread connection of :class:`Database` is this backend's pool (see
    :mod:`runner.store.sqlite.db` for the measurement): SQLite serialises writers
    anyway, and a connection never crosses threads.
    """
    if request.shared:
        return SqliteStore(Database(request.database, request.options,
                                    readonly=request.readonly, shared=True))
    if request.readonly:
        return sqlite_store(Database(request.database, request.options, readonly=True))
    db = open_database(request.database, request.options, file_mode=request.file_mode)
    prepare_database(db)
    return sqlite_store(db)


BACKEND = Backend("sqlite", open_sqlite, errors=(sqlite3.Error, peewee.DatabaseError),
                  bugs=(sqlite3.ProgrammingError, sqlite3.InterfaceError))
