"""PostgreSQL: workers: registration, heartbeats, orphan recovery, named leases.

The PostgreSQL side of :mod:`runner.store.worker_presence`, a mixin of
:class:`runner.store.postgres.PostgresStore` (its ``db`` is the
:class:`~runner.store.postgres.connection.PgDatabase`).
"""

from __future__ import annotations

from runner.store.backend import AttemptLog
from runner.store.postgres import attempts as _attempts
from runner.store.postgres import kv as _kv
from runner.store.postgres import workers as _workers
from runner.store.postgres.connection import PgDatabase
from runner.store.rows import Recovery


class PostgresWorkers:
    """:class:`runner.store.worker_presence.WorkersStore` on a PostgreSQL database."""

    db: PgDatabase

    def attempt_log(self, owner: str) -> AttemptLog:
        return _attempts.AttemptLog(self.db, owner)

    def register(self, owner: str, *, concurrency: int, queues: tuple[str, ...],
                 now: float | None = None) -> None:
        return _workers.register(self.db, owner, concurrency=concurrency, queues=queues, now=now)

    def heartbeat(self, owner: str, job_ids: list[str], *, lease_seconds: float,
                  rss_bytes: int | None = None, cpu_percent: float | None = None,
                  processed: int | None = None, status: str | None = None,
                  running: int | None = None, now: float | None = None) -> None:
        return _workers.heartbeat(self.db, owner, job_ids, lease_seconds=lease_seconds,
                                  rss_bytes=rss_bytes, cpu_percent=cpu_percent,
                                  processed=processed, status=status, running=running, now=now)

    def mark_stopped(self, owner: str, now: float | None = None) -> None:
        return _workers.mark_stopped(self.db, owner, now)

    def recover_orphans(self, *, crash_limit: int, me: str | None = None,
                        now: float | None = None) -> Recovery:
        return _workers.recover_orphans(self.db, crash_limit=crash_limit, me=me, now=now)

    def prune_workers(self, *, older_than: float, now: float | None = None) -> int:
        return _workers.prune_workers(self.db, older_than=older_than, now=now)

    def charge_stuck(self, job_id: str, attempt: int, owner: str, message: str, *,
                     crash_limit: int, now: float | None = None) -> str | None:
        return _workers.charge_stuck(self.db, job_id, attempt, owner, message,
                                     crash_limit=crash_limit, now=now)

    def take_lease(self, name: str, owner: str, ttl: float, *,
                   now: float | None = None) -> bool:
        return _kv.take_lease(self.db, name, owner, ttl, now=now)

    def release_lease(self, name: str, owner: str) -> None:
        _kv.release_lease(self.db, name, owner)
