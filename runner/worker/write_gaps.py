"""How long this worker's heartbeats were held back lately: the grace its recovery gives.

A lease that expired says its holder wrote nothing for a lease, which means it is
gone only if it could have written. A lock held past the lease (``VACUUM FULL``,
a ``LOCK TABLE``, another process holding SQLite's write lock) or a database
that was away holds every worker's heartbeat back alike: when it ends, the
leases of live workers have expired too, and the first worker to look would
charge their jobs a crash and run them again beside them.

The recovering worker measures such a stall itself: the time between two of its
heartbeats that got through, when longer than two ``heartbeat_interval`` (a beat
held back or failed). For one lease after it ends, its recovery gives every lease
that long again before it counts as expired: a live holder's own heartbeat gets
through as soon as the stall ends, and one that writes nothing for a lease after
it is gone. A stall of this worker alone (its process paused) is counted too,
which only delays a recovery.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class WriteGaps:
    """The stalls of this worker's heartbeats; :meth:`grace` while they matter."""

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: float = clock()
        #: (when it ended, how long it lasted) of each stall still remembered.
        self._stalls: list[tuple[float, float]] = []

    def written(self, lease_seconds: float) -> float | None:
        """A heartbeat got through just now; the stall it ended, in seconds, if any."""
        now = self.clock()
        gap, self._last = now - self._last, now
        self._forget(now, lease_seconds)
        if gap <= 2 * self.interval:
            return None
        self._stalls.append((now, gap))
        return gap

    def grace(self, lease_seconds: float) -> float:
        """Seconds a lease is given past its expiry: the stalls that ended within a lease."""
        self._forget(self.clock(), lease_seconds)
        return sum(length for _, length in self._stalls)

    def _forget(self, now: float, lease_seconds: float) -> None:
        # A lease not renewed for a whole lease after the stall was not held back by it.
        self._stalls = [(end, length) for end, length in self._stalls
                        if now - end < lease_seconds]
