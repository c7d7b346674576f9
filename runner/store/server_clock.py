"""The server's clock as this process reads it: the clock of the times hosts share.

Processes on several hosts write times into one PostgreSQL or Redis store that
the others then judge: when a job is due (``run_at``), when a huey lock's TTL
ends. Read from each host's own clock, a host ``D`` ahead of the others would
start delayed jobs and retries ``D`` early, and one behind would hold them ``D``
late. The job storage writes and judges those times by the server's clock
instead: this host's clock minus its offset from the server's
(:mod:`runner.clock_drift`).

A worker measures the offset at start and with every heartbeat
(:mod:`runner.worker.clock_check`) and hands it in here; any other process (a
script that enqueues, a web app) reads the server's clock at its first write,
and again at a write once :data:`REREAD_AFTER` seconds have passed (a host's
clock set right by NTP meanwhile): one round trip per window, none per job.
The times of the job history (started, finished) stay this host's. A SQLite
file has no clock but its host's: the offset is 0 and nothing is read.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence

from runner import clock_drift
from runner.store.job_rows import NewJob
from runner.store.worker_presence import WorkersStore

logger = logging.getLogger(__name__)


#: Seconds one reading of the server's clock serves a process that measures none itself.
REREAD_AFTER = 300.0


class ServerClock:
    """This host's clock corrected by its offset from the store server's."""

    def __init__(self, store: WorkersStore, *, clock: Callable[[], float] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock if clock is not None else _this_hosts_clock
        self._monotonic = monotonic
        self._offset: float | None = None  # None: not read yet
        #: The store has no clock but this host's (a SQLite file): once known, never read.
        self.local = False
        self._stale_at = 0.0  # when the reading is to be made again (monotonic)
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        """Seconds this clock is ahead of the server's (behind: negative); 0 within the
        reading's error, and on SQLite. Read from the server at the first use, and again
        at a use :data:`REREAD_AFTER` seconds after the last measurement."""
        offset = self._offset
        if offset is None or (not self.local and self._monotonic() >= self._stale_at):
            return self._read()
        return offset

    def set(self, offset: float | None, error: float) -> None:
        """A measurement made elsewhere (the worker's): ``offset`` read with ``error``."""
        self._offset = clock_drift.settled(offset, error)
        self._stale_at = self._monotonic() + REREAD_AFTER

    def now(self) -> float:
        """The server's time now."""
        # The property's test inline: every claim, outcome and enqueue asks.
        if self.local:
            clock = self._clock
            return time.time() if clock is _this_hosts_clock else clock()
        offset = self._offset
        if offset is None or self._monotonic() >= self._stale_at:
            offset = self._read()
        return self._clock() - offset

    def to_server(self, local: float) -> float:
        """A time of this host's clock (``time.time() + delay``, an ETA) as the server's."""
        return local - self.offset

    def to_local(self, server: float) -> float:
        """A time written by the server's clock as this host's clock reads it."""
        return server + self.offset

    def jobs(self, jobs: Sequence[NewJob]) -> Sequence[NewJob]:
        """New jobs with their ``run_at`` (this host's) as the server's. Copies: a write
        tried again (a full queue) must not shift them twice."""
        if self.local:
            return jobs
        offset = self.offset
        if not offset:
            return jobs
        return [dataclasses.replace(j, run_at=j.run_at - offset) for j in jobs]

    def _read(self) -> float:
        with self._lock:
            if self._offset is not None and self._monotonic() < self._stale_at:
                return self._offset  # another thread read it meanwhile
            sent = self._clock()
            try:
                server = self._store.server_time()
            except Exception:
                # The write that asked reaches the same server: it fails or succeeds on
                # its own, and the next one reads again. Meanwhile the last offset known
                # is the best guess.
                logger.debug("reading the server's clock failed", exc_info=True)
                return 0.0 if self._offset is None else self._offset
            received = self._clock()
            self.local = server is None
            offset = None if server is None else clock_drift.measured_offset(sent, server,
                                                                           received)
            self._offset = clock_drift.settled(offset, (received - sent) / 2)
            self._stale_at = self._monotonic() + REREAD_AFTER
            return self._offset


def _this_hosts_clock() -> float:
    # time.time looked up at each call, not bound once: a clock set in its place later
    # (a test's fixed time) is the one read.
    return time.time()
