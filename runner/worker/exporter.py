"""Which worker serves the database-wide metrics: a lease in the jobs database.

Every worker with a metrics listener and ``[metrics] database = "elected"``
tries to take or renew the lease once per ``heartbeat_interval``; the holder
adds the database-wide series (counters, backlog) to its ``/metrics``, the
others serve only their own. When the holder stops or dies its lease runs out
(three intervals) and another worker takes over, so the figures never come
from two places at once, and never from none while a worker with a listener
runs. The lease's end is written and judged by the database server's clock
(``clock``): a host ahead would hold it past its end, one behind would leave
it to be taken while it still renews it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from runner.store.backend import Store

logger = logging.getLogger(__name__)

#: The lease's name in ``runner_lease``.
LEASE = "metrics-exporter"


class ExporterElection:
    """A thread renewing the lease; :attr:`elected` says whether we hold it now."""

    def __init__(self, store: Store, owner: str, interval: float, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner
        self.interval = interval
        self.ttl = 3 * interval
        self._until = 0.0  # monotonic time our last successful renewal is good until
        self.passes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def elected(self) -> bool:
        """True while a renewal we made has not expired (never past a stuck database)."""
        return time.monotonic() < self._until

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="runner-exporter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            began = time.monotonic()
            try:
                held = self.store.take_lease(LEASE, self.owner, self.ttl, now=self.clock())
                # Stop claiming a little before the lease others see runs out.
                self._until = began + self.ttl - self.interval if held else 0.0
            except Exception as exc:
                logger.debug("metrics exporter lease not renewed: %s", exc)
            self.passes += 1
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._until:
            self._until = 0.0
            try:
                self.store.release_lease(LEASE, self.owner)
            except Exception as exc:
                logger.debug("metrics exporter lease not released: %s", exc)
