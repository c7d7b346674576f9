"""What a store provides besides the data, on Redis: wake-ups, the attempt log, leases,
upkeep and integrity.

Wake-ups are pub/sub (:mod:`runner.store.redis.wakeups`). A worker's started
attempts are noted in a running file on its own host, as on SQLite (a process
that dies leaves it for the lifeline of the same host). Memory is given back as
keys are deleted, so there is nothing to vacuum and no local disk to watch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import redis

from runner.errors import DatabaseUnavailable, DiskFull
from runner.store.backend import AttemptLog
from runner.store.redis.codec import arg
from runner.store.redis.connection import RedisBase
from runner.store.redis.wakeups import RedisListener
from runner.store.sqlite.running_file import RunningFile, running_path

#: Every feature's data exists on Redis from the start (``has_table`` says yes to these).
TABLES = {"runner_job", "runner_job_error", "runner_kv", "runner_log", "runner_event",
          "runner_schedule", "runner_schedule_run", "runner_worker", "runner_meta",
          "runner_queue", "runner_counter", "runner_lease"}


class Upkeep(RedisBase):
    """Wake-ups, attempt log, named leases, upkeep and checks."""

    readonly_handle = False

    @property
    def location(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        shown = f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}"
        return f"{shown}{parts.path} (prefix {self.prefix})"

    @property
    def readonly(self) -> bool:
        return self.readonly_handle

    def refresh(self) -> None:
        """Nothing to drop: every read is its own command."""

    def wakeup(self) -> None:
        if getattr(self._published, "woke", False):
            # This thread's enqueue just published it in the same step: one round trip
            # per enqueue, not two.
            self._published.woke = False
            return
        try:
            self.r.publish(self.k("wake"), b"1")
        except redis.RedisError:  # never raises: the workers' poll finds the jobs anyway
            pass

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None] | None:
        listener = RedisListener(self, on_wake)
        return listener.stop if listener.start() else None

    def attempt_log(self, owner: str) -> AttemptLog:
        return RunningFile(running_path(self.path, owner))

    # -- named leases --------------------------------------------------------------------

    def take_lease(self, name: str, owner: str, ttl: float, *,
                   now: float | None = None) -> bool:
        at = time.time() if now is None else now
        return bool(self.run("take_lease", name, owner, arg(float(ttl)), arg(float(at))))

    def release_lease(self, name: str, owner: str) -> None:
        self.run("release_lease", name, owner)

    # -- upkeep --------------------------------------------------------------------------

    def enable_space_reclaim(self, *, me: str | None = None) -> str | None:
        return None  # Redis frees a key's memory when it is deleted

    def space_reclaim_note(self) -> str | None:
        return None

    def vacuum(self, *, force: bool = False) -> str:
        return (f"{self.location}: nothing to vacuum (Redis gives memory back as retention "
                "deletes keys)")

    def data_dir(self) -> Path | None:
        return None  # the data is not on this host's disk

    def probe_write(self, size: int, *, deadline: float, commit: bool = False) -> None:
        key = self.k("probe")
        try:
            self.r.set(key, b"\0" * size, px=max(1, int(deadline * 1000)))
            self.r.delete(key)
        except redis.ResponseError as exc:
            if "OOM" in str(exc):
                raise DiskFull(f"{self.location}: Redis is out of memory ({exc})") from None
            raise

    def integrity_problem(self, *, full_check_below: int) -> str | None:
        result = self.quick_check()
        return None if result == "ok" else result

    def verify(self) -> None:
        result = self.quick_check()
        if result != "ok":
            raise DatabaseUnavailable(f"{self.location}: {result}")

    def has_table(self, name: str) -> bool:
        return name in TABLES

    def quick_check(self) -> str:
        try:
            return "ok" if self.r.ping() else "no answer from Redis"
        except redis.RedisError as exc:  # a check reports, it does not raise
            return f"Redis: {exc}"
