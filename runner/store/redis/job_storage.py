"""huey's storage on Redis: the SQLite one's claiming and outcomes over a :class:`RedisStore`.

Only opening, wake-ups and the key/value part differ; claims, acks, leases and
recovery go through the store as on SQLite. ``db`` is the store itself, so the
worker's parts that take a handle (log sink, retention) reach Redis through it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runner.store.job_storage import JobStorage
from runner.store.redis import RedisStore
from runner.store.redis.kv import RedisKeyValue
from runner.store.redis.wakeups import RedisListener, RedisNotifier


class RedisJobStorage(RedisKeyValue, JobStorage):
    """:class:`JobStorage` whose data lives in Redis under ``[runner] redis_prefix``."""

    local_file = False
    store: RedisStore

    def _open(self) -> None:
        runner = self.settings.runner
        self.store = RedisStore(runner.redis_url, prefix=runner.redis_prefix)
        self.db = self.store  # type: ignore[assignment]
        self.notifier = RedisNotifier(self.store)  # type: ignore[assignment]

    def _listener_for(self, on_wake: Callable[[], None]) -> RedisListener:  # type: ignore[override]
        return RedisListener(self.store, on_wake)

    def charge_stuck(self, job_id: str, attempt: int, owner: str, message: str, *,
                     crash_limit: int) -> str | None:
        return self.store.charge_stuck(job_id, attempt, owner, message, crash_limit=crash_limit)

    def wake(self) -> None:
        """Wake this process's threads; other processes heard the script that readied a job."""
        with self._cond:
            self._wake_seq += 1
            self._cond.notify_all()

    @property
    def path(self) -> Path:
        """This host's directory for the Redis data (running files)."""
        return self.store.path
