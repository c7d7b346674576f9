"""The PostgreSQL backend of the storage seam: :class:`PostgresStore` over one database.

Any number of ``run.py`` processes on any number of hosts share one database:
claims take rows with ``FOR UPDATE SKIP LOCKED`` in one statement per batch,
enqueues ``NOTIFY`` the database's channel so idle workers wake at once,
schedule slots fire once by compare-and-set, events fan out once by
compare-and-set. Each method of the store is one transaction or one read.

:class:`PostgresStore` is the union of one mixin per part of the protocol,
named as the protocol's module (as :class:`runner.store.sqlite.SqliteStore`):
:mod:`.handle`, :mod:`.job_machine`, :mod:`.flow_control`,
:mod:`.worker_presence`, :mod:`.schedule_store`, :mod:`.event_store`,
:mod:`.log_store`, :mod:`.job_queries`, :mod:`.bulk_control`,
:mod:`.job_stats`, :mod:`.dashboard_panels`, :mod:`.metrics_scrape`,
:mod:`.key_values` and :mod:`.upkeep`. Most mixins hold their own statements;
the statements several parts share live in :mod:`.transitions` (the job state
machine, with the tuned claim and enqueue), :mod:`.limits`, :mod:`.counting`,
:mod:`.job_queries` (the job filter) and :mod:`.maintenance`, with
:mod:`.connection`, :mod:`.schema` and :mod:`.wakeup` under them all.
"""

from __future__ import annotations

import psycopg

from runner.store.backend import Backend, StoreRequest
from runner.store.postgres.bulk_control import PostgresControl
from runner.store.postgres.connection import PgDatabase, is_postgres_url, open_pg_database
from runner.store.postgres.dashboard_panels import PostgresDashboard
from runner.store.postgres.event_store import PostgresEvents
from runner.store.postgres.flow_control import PostgresFlowControl
from runner.store.postgres.handle import PostgresHandle
from runner.store.postgres.job_machine import PostgresJobs
from runner.store.postgres.job_queries import PostgresQueries
from runner.store.postgres.job_stats import PostgresStats
from runner.store.postgres.key_values import PostgresKeyValues
from runner.store.postgres.log_store import PostgresLogs
from runner.store.postgres.metrics_scrape import PostgresScrape
from runner.store.postgres.schedule_store import PostgresSchedules
from runner.store.postgres.schema import prepare
from runner.store.postgres.upkeep import PostgresUpkeep
from runner.store.postgres.worker_presence import PostgresWorkers

__all__ = ["BACKEND", "PostgresStore", "PgDatabase", "is_postgres_url", "open_postgres_store"]


class PostgresStore(PostgresHandle, PostgresJobs, PostgresFlowControl, PostgresWorkers,
                    PostgresSchedules, PostgresEvents, PostgresLogs, PostgresQueries,
                    PostgresControl, PostgresStats, PostgresDashboard, PostgresScrape,
                    PostgresKeyValues, PostgresUpkeep):
    """:class:`runner.store.backend.Store` on a PostgreSQL database (see the module docstring)."""


def open_postgres_store(url: str, *, pool_size: int = 4, readonly: bool = False,
                        reach_within: float | None = None,
                        lock_wait: float | None = None) -> PostgresStore:
    """The store of a database URL: connected, its schema created or migrated (once per process).

    Raises:
        ConfigError: the URL is malformed.
        DatabaseUnavailable: the server cannot be reached.
        SchemaTooNew: the database was written by a newer version; nothing changed.
    """
    db = open_pg_database(url, pool_size=pool_size, lock_wait=lock_wait)
    if reach_within is not None:
        db.reach(reach_within)
    if not readonly:
        prepare(db)
    return PostgresStore(db, readonly=readonly)


def open_postgres(request: StoreRequest) -> PostgresStore:
    """The store of a ``postgresql://`` URL; unless read-only, its schema created or
    migrated (once per process, one process at a time)."""
    return open_postgres_store(request.database, pool_size=request.connections or 4,
                               readonly=request.readonly, reach_within=request.reach_within,
                               lock_wait=request.lock_wait)


BACKEND = Backend("postgres", open_postgres, errors=(psycopg.Error,),
                  bugs=(psycopg.ProgrammingError,))
