"""This worker's clock against the server's: measured at start and with every heartbeat.

The rule and what follows from an offset are in :mod:`runner.clock_drift`. Here:
one round trip to the store's clock (:meth:`Store.server_time`) at start, then
the clock each heartbeat reads on its own round trip (:meth:`record`); a
warning when the offset goes past the limit (and again when it grows by as
much again), a note when it comes back, the claims' lease lengthened while
this clock is behind, and the offset handed to the job storage, which writes
and judges due times by the server's clock (:mod:`runner.store.server_clock`).
A store without a clock of its own (SQLite) is never measured: every process
of a file shares this host's clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from runner import clock_drift
from runner.config import Settings
from runner.durations import age
from runner.store.job_storage import JobStorage
from runner.store.owners import node_of

logger = logging.getLogger(__name__)


class ClockCheck:
    """The offset of this host's clock from the server's, as last measured."""

    def __init__(self, storage: JobStorage, settings: Settings, owner: str, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.clock = clock
        self.lease_seconds = settings.worker.lease_seconds
        self.limit = clock_drift.drift_limit(settings.worker)
        self.host = node_of(owner)
        self.offset: float | None = None
        """Seconds this clock is ahead of the server's (negative: behind); None until
        measured, and always on SQLite."""
        self._warned: float | None = None  # the offset last warned about, while past the limit

    def measure(self) -> float | None:
        """Read the server's clock once; returns the offset now in force."""
        sent = self.clock()
        server = self.storage.store.server_time()
        return self.record(sent, server, self.clock())

    def record(self, sent: float, server: float | None, received: float) -> float | None:
        """Take a reading of the server's clock, ``server``, made between ``sent`` and
        ``received`` by this clock (a heartbeat's); returns the offset now in force.

        A reading is off by at most half its round trip. One whose round trip took
        longer than half the limit is dropped when there is an earlier one to keep;
        the first is kept whatever it took (better than none: it decides the first
        leases), but warned about only when it is past the limit however it is off.
        """
        error = (received - sent) / 2
        if server is None or (self.offset is not None and error > self.limit / 4):
            return self.offset
        self.offset = offset = clock_drift.measured_offset(sent, server, received)
        self.storage.lease_seconds = clock_drift.lease_for(self.lease_seconds, offset)
        self.storage.clock.set(offset, error)
        self._report(offset, error)
        return offset

    def judging_time(self, now: float) -> float:
        """``now`` as leases are judged: by the server's clock when this one is ahead."""
        return clock_drift.judging_time(now, self.offset)

    def lease(self) -> float:
        """The lease length heartbeats and claims write (longer while this clock is behind)."""
        return clock_drift.lease_for(self.lease_seconds, self.offset)

    def _report(self, offset: float, error: float) -> None:
        if not clock_drift.over_limit(offset, self.limit + error):
            if self._warned is not None:
                logger.info("%s: within the limit (%s) again",
                            clock_drift.describe(self.host, offset), age(self.limit))
                self._warned = None
            return
        if self._warned is not None and abs(offset - self._warned) <= self.limit:
            return
        self._warned = offset
        logger.warning("%s (limit %s, [worker] max_clock_drift): %s. Synchronise the clocks "
                       "of this host and the server (NTP)",
                       clock_drift.describe(self.host, offset), age(self.limit),
                       clock_drift.consequence(offset))
