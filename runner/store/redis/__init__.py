"""The Redis backend of the storage seam: :class:`RedisStore` over one key prefix.

Jobs are hashes; waiting jobs sit in per-queue sorted sets (best priority, then
oldest due first) and delayed ones in per-queue sets by ``run_at``; a claim
moves jobs into the worker's in-flight set under a lease, in one Lua script, so
a worker that dies loses nothing: the lifeline (``recover_orphans``) puts its
jobs back. Every transition is one script (:mod:`runner.store.redis.scripts`),
so the delivery contract is the SQLite one (``tests/conformance/``).

Not kept: SQLite's file upkeep (vacuum, WAL checkpoints; ``prune_retention``
reports none). Keys are not declared to the scripts, so Redis Cluster is not
supported (one Redis server, or a primary with replicas).

:class:`RedisStore` is the union of one mixin per part of the protocol, named
as the protocol's module (as :class:`runner.store.sqlite.SqliteStore`):
:mod:`.handle`, :mod:`.jobs` (the job machine), :mod:`.flow_control`,
:mod:`.worker_presence`, :mod:`.schedule_store`, :mod:`.event_store`,
:mod:`.log_store`, :mod:`.job_queries`, :mod:`.bulk_control`,
:mod:`.job_stats`, :mod:`.dashboard_panels`, :mod:`.metrics_scrape`,
:mod:`.key_values` and :mod:`.upkeep`; the reads they share walk the job
indexes in :mod:`.job_index`.
"""

from __future__ import annotations

import redis

from runner.store.backend import Backend, StoreRequest
from runner.store.redis.bulk_control import RedisControl
from runner.store.redis.connection import DEFAULT_PREFIX, local_dir
from runner.store.redis.dashboard_panels import RedisDashboard
from runner.store.redis.event_store import RedisEvents
from runner.store.redis.flow_control import RedisFlowControl
from runner.store.redis.handle import RedisHandle
from runner.store.redis.job_queries import RedisQueries
from runner.store.redis.job_stats import RedisStats
from runner.store.redis.jobs import JobMachine
from runner.store.redis.key_values import RedisKeyValues
from runner.store.redis.log_store import RedisLogs
from runner.store.redis.metrics_scrape import RedisScrape
from runner.store.redis.schedule_store import RedisSchedules
from runner.store.redis.upkeep import RedisUpkeep
from runner.store.redis.url import split_prefix
from runner.store.redis.worker_presence import RedisWorkers

__all__ = ["RedisStore", "DEFAULT_PREFIX", "local_dir", "open_redis", "BACKEND"]


class RedisStore(RedisHandle, JobMachine, RedisFlowControl, RedisWorkers, RedisSchedules,
                 RedisEvents, RedisLogs, RedisQueries, RedisControl, RedisStats, RedisDashboard,
                 RedisScrape, RedisKeyValues, RedisUpkeep):
    """:class:`runner.store.backend.Store` on Redis (see the module docstring)."""


def open_redis(request: StoreRequest) -> RedisStore:
    """The store of a ``redis://...[?prefix=NAME]`` URL (keys are made on first write);
    unless read-only, its prefix marked as holding a jobs database from now on."""
    url, prefix = split_prefix(request.database, DEFAULT_PREFIX)
    store = RedisStore(url, prefix=prefix)
    if request.reach_within is not None:
        store.reach(request.reach_within)
    store.readonly_handle = request.readonly
    if not request.readonly:
        store.mark_jobs_database()
    return store


BACKEND = Backend("redis", open_redis, errors=(redis.RedisError,), bugs=(redis.ResponseError,))
