"""The housekeeping thread of a worker: resource guard, progress flush, retention.

One pass every ``heartbeat_interval`` seconds checks memory and disk
(:mod:`runner.worker.guard`) and writes throttled progress values
(:mod:`runner.progress`); every ``[retention] interval`` it also prunes,
forgets idle queues and checkpoints (:mod:`runner.store.sqlite.maintenance`). Kept
apart from the lifeline so that a long prune never delays a heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time

import psutil

from runner.config import Settings
from runner.progress import flush_progress
from runner.store.backend import Store
from runner.worker.guard import ResourceGuard

logger = logging.getLogger(__name__)


class Housekeeper:
    """Background loop with ``start()``/``stop()``; one :meth:`tick` per interval."""

    def __init__(self, store: Store, settings: Settings, guard: ResourceGuard) -> None:
        self.store = store
        self.guard = guard
        self.settings = settings
        self.retention = settings.retention
        self.last_tick: float | None = None
        self._next_prune = time.monotonic() + min(self.retention.interval, 60.0)
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reconfigure(self, settings: Settings) -> None:
        """New settings after SIGHUP (already validated)."""
        self.settings = settings
        self.guard.settings = settings
        self.retention = settings.retention

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="runner-housekeeper",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        try:
            flush_progress()
        except Exception:
            logger.exception("final progress flush failed")

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.worker.heartbeat_interval):
            try:
                self.tick()
            except Exception:
                logger.exception("housekeeping pass failed")

    def tick(self) -> None:
        """Guard, progress, and retention when due."""
        self.guard.check(self._process.memory_info().rss)
        flush_progress()
        self.last_tick = time.monotonic()
        if self.retention.enabled and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self.retention.interval
            if self.guard.reason:
                return  # no vacuum or checkpoint while the disk is full
            report = self.store.prune_retention(self.retention,
                                                keep_queues=list(self.settings.queues))
            if any(report.deleted.values()) or report.vacuumed_pages:
                logger.info("retention: deleted %s, %d pages vacuumed, WAL %.1f -> %.1f MiB",
                            ", ".join(f"{n} {k}" for k, n in report.deleted.items() if n),
                            report.vacuumed_pages, report.wal_bytes_before / 2**20,
                            report.wal_bytes_after / 2**20)
            if report.forgotten_queues:
                logger.info("retention: forgot %d idle queues (no job left, not in settings)",
                            report.forgotten_queues)
