"""SQLite: workers, heartbeats, orphans, the attempt file and named leases.

The SQLite side of :mod:`runner.store.worker_presence`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from runner.store.backend import AttemptLog
from runner.store.job_rows import FailureInfo
from runner.store.rows import Beat, Recovery
from runner.store.sqlite import leases as _leases
from runner.store.sqlite import workers as _workers
from runner.store.sqlite.db import Database
from runner.store.sqlite.running_file import RunningFile, running_path


class SqliteWorkers:
    """:class:`runner.store.worker_presence.WorkersStore` on a SQLite file."""

    db: Database

    def attempt_log(self, owner: str) -> AttemptLog:
        return RunningFile(running_path(self.db.path, owner), keeps_outcomes=True)

    def server_time(self) -> float | None:
        return None  # every process of a file reads this host's clock

    def register(self, owner: str, *, concurrency: int, queues: tuple[str, ...],
                 clock_offset: float | None = None, now: float | None = None) -> None:
        return _workers.register(self.db, owner, concurrency=concurrency, queues=queues,
                                 clock_offset=clock_offset, now=now)

    def heartbeat(self, owner: str, job_ids: list[str], *, lease_seconds: float,
                  rss_bytes: int | None = None, cpu_percent: float | None = None,
                  processed: int | None = None, status: str | None = None,
                  running: int | None = None, clock_offset: float | None = None,
                  now: float | None = None) -> Beat:
        return _workers.heartbeat(self.db, owner, job_ids, lease_seconds=lease_seconds,
                                  rss_bytes=rss_bytes, cpu_percent=cpu_percent,
                                  processed=processed, status=status, running=running,
                                  clock_offset=clock_offset, now=now)

    def mark_stopped(self, owner: str, now: float | None = None) -> None:
        return _workers.mark_stopped(self.db, owner, now)

    def recover_orphans(self, *, crash_limit: int, me: str | None = None,
                        now: float | None = None, grace: float = 0.0) -> Recovery:
        return _workers.recover_orphans(self.db, crash_limit=crash_limit, me=me, now=now,
                                        grace=grace)

    def prune_workers(self, *, older_than: float, now: float | None = None) -> int:
        return _workers.prune_workers(self.db, older_than=older_than, now=now)

    def charge_stuck(self, job_id: str, attempt: int, owner: str, failure: FailureInfo, *,
                     run_at: float | None = None, data: bytes | None = None,
                     reason: str | None = None, now: float | None = None) -> str | None:
        return _workers.charge_stuck(self.db, job_id, attempt, owner, failure, run_at=run_at,
                                     data=data, reason=reason, now=now)

    # -- named leases --------------------------------------------------------------------

    def take_lease(self, name: str, owner: str, ttl: float, *,
                   now: float | None = None) -> bool:
        return _leases.take_lease(self.db, name, owner, ttl, now=now)

    def release_lease(self, name: str, owner: str) -> None:
        _leases.release_lease(self.db, name, owner)
