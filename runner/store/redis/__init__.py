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
"""

from __future__ import annotations

import time

import redis

from runner.sections import RetentionSection
from runner.store.backend import Backend, StoreRequest
from runner.store.redis.connection import DEFAULT_PREFIX, local_dir
from runner.store.redis.control import Control
from runner.store.redis.kv import KeyValues
from runner.store.redis.logs import Logs
from runner.store.redis.panels import Panels
from runner.store.redis.room import RedisRoom
from runner.store.redis.schedules import Schedules
from runner.store.redis.upkeep import Upkeep
from runner.store.redis.workers import Workers
from runner.store.rows import PruneReport
from runner.store.states import JobState

__all__ = ["RedisStore", "DEFAULT_PREFIX", "local_dir", "open_redis", "BACKEND"]

DAY = 86400.0


class RedisStore(Panels, Control, Workers, Logs, Schedules, KeyValues, Upkeep, RedisRoom):
    """:class:`runner.store.backend.Store` on Redis (see the module docstring)."""
    # -- maintenance ---------------------------------------------------------------------

    def prune_retention(self, section: RetentionSection, *, now: float | None = None,
                        dry_run: bool = False) -> PruneReport:
        at = time.time() if now is None else now
        report = PruneReport()
        completed_before = at - section.completed_days * DAY
        dead_before = at - section.dead_days * DAY
        log_cut = at - section.logs_days * DAY
        if dry_run:
            report.deleted["jobs"] = sum(
                int(self.r.zcount(self.k("fin", s), "-inf", f"({cut}"))
                for s, cut in ((JobState.COMPLETED.value, completed_before),
                               (JobState.CANCELLED.value, completed_before),
                               (JobState.DEAD.value, dead_before)))
            report.deleted["logs"] = self.prune_logs(log_cut, dry_run=True)
            report.deleted["events"] = self.prune_events(section.events_days, now=at,
                                                         dry_run=True)
            return report
        size = section.batch_size
        jobs = job_logs = 0
        while True:
            batch_jobs, batch_logs = self.run(  # type: ignore[misc]
                "prune_jobs", repr(float(completed_before)), repr(float(dead_before)), size)
            jobs, job_logs = jobs + int(batch_jobs), job_logs + int(batch_logs)
            if int(batch_jobs) < size:
                break
        # The failed-attempt index outlives no job it could describe.
        self.r.zremrangebyscore(self.k("failed"), "-inf",
                                f"({min(completed_before, dead_before)}")
        report.deleted["jobs"] = jobs
        report.deleted["logs"] = job_logs + self.prune_logs(log_cut, batch=size)
        report.deleted["events"] = self.prune_events(section.events_days, now=at, batch=size)
        report.deleted["workers"] = self._prune_stopped_workers(at - section.workers_days * DAY)
        return report

    def _prune_stopped_workers(self, before: float) -> int:
        old = self.r.zrangebyscore(self.k("workers"), "-inf", f"({before}")
        gone = 0
        for owner in old:
            key = self.k("worker", owner.decode())
            if self.r.hget(key, "state") != b"running":
                self.r.delete(key)
                self.r.zrem(self.k("workers"), owner)
                gone += 1
        return gone


def open_redis(request: StoreRequest) -> RedisStore:
    """The store of a ``redis://...[?prefix=NAME]`` URL (keys are made on first write)."""
    url, prefix = request.database, DEFAULT_PREFIX
    base, sep, query = url.partition("?")
    if sep:
        kept = []
        for part in query.split("&"):
            name, _, value = part.partition("=")
            if name == "prefix" and value:
                prefix = value
            elif part:
                kept.append(part)
        url = base + ("?" + "&".join(kept) if kept else "")
    store = RedisStore(url, prefix=prefix)
    store.readonly_handle = request.readonly
    return store


BACKEND = Backend("redis", open_redis, errors=(redis.RedisError,), bugs=(redis.ResponseError,))
