"""Resource guard: memory limit and disk-full protection of one worker process.

* Memory: when the RSS goes over ``[worker] max_memory_mb``, the worker stops
  claiming, drains its running jobs (as on SIGTERM) and exits with code 86
  (:data:`~runner.errors.EX_MEMORY_LIMIT`), so systemd's ``Restart=on-failure``
  starts a fresh process. Thread workers share one interpreter, so restarting
  the process is the only way to give memory back.
* Disk: when free space under the database's directory falls below
  ``[worker] min_free_disk_mb``, or SQLite reports the disk full (SQLITE_FULL,
  including a ``max_page_count`` cap) or an I/O error on write, claiming is
  held: running jobs finish, their outcomes wait in memory, health says why.
  Each :meth:`ResourceGuard.check` probes again (a rolled-back write) and
  claiming resumes by itself once the disk has room.
* Hysteresis, so claiming does not flap between held and resumed while the disk
  sits at the edge: a write-failure hold ends only after
  :data:`RESUME_AFTER` probes in a row succeed with a larger, committed write
  (:data:`_RESUME_PROBE_BYTES`) than the one that detects it, and a low-space
  hold ends only once free space is a margin above ``min_free_disk_mb``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable

from runner.config import Settings
from runner.errors import DiskFull
from runner.store.job_storage import JobStorage

logger = logging.getLogger(__name__)

_PROBE_BYTES = 3 * 4096
#: While held, a committed probe must fit this much: the room a few claims and outcomes need.
_RESUME_PROBE_BYTES = 16 * 4096
#: Consecutive good probes before a write-failure hold ends.
RESUME_AFTER = 2


def space_margin_mb(minimum_mb: int) -> int:
    """How far above ``min_free_disk_mb`` free space must climb to end a hold."""
    return max(8, minimum_mb // 4)


def holds_for_space(free_mb: float, minimum_mb: int, held: bool) -> bool:
    """Whether claiming stays held for low free space (pure, with hysteresis)."""
    if not minimum_mb:
        return False
    if held:
        return free_mb < minimum_mb + space_margin_mb(minimum_mb)
    return free_mb < minimum_mb


class ResourceGuard:
    """Decides when claiming must be held; ``check()`` once per housekeeping pass."""

    def __init__(self, storage: JobStorage, settings: Settings, *,
                 on_memory_limit: Callable[[int], None] | None = None) -> None:
        self.storage = storage
        self.settings = settings
        self.on_memory_limit = on_memory_limit
        self.memory_exceeded = False
        self._last_loud = 0.0
        self._good_probes = 0
        storage.on_disk_full = self.disk_full

    @property
    def reason(self) -> str | None:
        """Why claiming is held, or None."""
        holds = self.storage.holds
        return "; ".join(holds.values()) if holds else None

    def status(self) -> str:
        """The worker status written with each heartbeat."""
        reason = self.reason
        return f"paused: {reason}" if reason else "running"

    def check(self, rss_bytes: int | None = None) -> None:
        """Memory and disk checks; holds or resumes claiming."""
        if rss_bytes is not None:
            self.check_memory(rss_bytes)
        self.check_disk()

    def check_memory(self, rss_bytes: int) -> None:
        limit = self.settings.worker.max_memory_mb
        if not limit or self.memory_exceeded or rss_bytes <= limit * 2**20:
            return
        self.memory_exceeded = True
        reason = f"memory {rss_bytes / 2**20:.0f} MiB over max_memory_mb {limit}"
        self.storage.hold_claims("memory", reason)
        logger.error("%s: draining and exiting for a restart", reason)
        if self.on_memory_limit is not None:
            self.on_memory_limit(rss_bytes)

    def disk_full(self, exc: DiskFull) -> None:
        """A write failed for lack of space: hold claims now (from any thread)."""
        self._good_probes = 0
        self.storage.hold_claims("disk", f"disk full: {exc}")
        self._loud(f"database writes fail ({exc}); claiming stopped until space returns")

    def check_disk(self) -> None:
        free_reason = self._low_free_space()
        if free_reason:
            self.storage.hold_claims("space", free_reason)
            self._loud(f"{free_reason}; claiming stopped until space returns")
        elif self.storage.release_claims("space"):
            logger.warning("free space is back above min_free_disk_mb; claiming resumes")
        held = "disk" in self.storage.holds
        probe = (self._probe_write(_RESUME_PROBE_BYTES, commit=True) if held
                 else self._probe_write())
        if probe:
            self._good_probes = 0
            self.storage.hold_claims("disk", f"disk full: {probe}")
            self._loud(f"database writes fail ({probe}); claiming stopped until space returns")
        elif held:
            self._good_probes += 1
            if self._good_probes >= RESUME_AFTER and self.storage.release_claims("disk"):
                logger.warning("database writes work again; claiming resumes")

    def _low_free_space(self) -> str | None:
        minimum = self.settings.worker.min_free_disk_mb
        if not minimum:
            return None
        directory = self.storage.store.data_dir()
        if directory is None:
            return None
        try:
            free = shutil.disk_usage(directory).free
        except OSError as exc:
            return f"cannot read free space of {directory}: {exc.strerror}"
        held = "space" in self.storage.holds
        if holds_for_space(free / 2**20, minimum, held):
            resume = (f"; claiming resumes above {minimum + space_margin_mb(minimum)} MiB"
                      if held else "")
            return (f"only {free / 2**20:.0f} MiB free under {directory} "
                    f"(min_free_disk_mb {minimum}{resume})")
        return None

    def _probe_write(self, size: int = _PROBE_BYTES, *, commit: bool = False) -> str | None:
        """Try to allocate ``size`` bytes of pages; the problem, or None when it fits.

        Rolled back by default. With ``commit`` the row is committed and then
        deleted: a small rolled-back write may never leave SQLite's page cache,
        so only a committed one proves the disk takes writes again.
        """

        try:
            self.storage.store.probe_write(size, deadline=2.0, commit=commit)
        except DiskFull as exc:
            return str(exc)
        except Exception as exc:  # locked or otherwise: not a disk problem
            logger.debug("disk probe inconclusive: %s", exc)
        return None

    def _loud(self, message: str) -> None:
        if time.monotonic() - self._last_loud >= 60:
            self._last_loud = time.monotonic()
            logger.error(message)
