"""Completed and failed per minute over the last hour, kept between refreshes.

Reading an hour of completions at every refresh costs the job rate times an
hour (millions of rows at full speed). :class:`RateHistory` instead keeps
per-second counts: each refresh re-reads only the last :attr:`LOOKBACK`
seconds (acknowledgements are committed in small batches, a little late) and
back-fills older history one chunk per refresh until the hour is covered.
"""

from __future__ import annotations

import time

from runner.readmodel.dashboard import finished_per_second
from runner.store.backend import Store

#: Chart ranges: name -> (seconds per bucket, buckets).
RANGES: dict[str, tuple[int, int]] = {"1h": (60, 60), "6h": (300, 72), "24h": (900, 96)}


class RateHistory:
    """Per-second completions and failures of the last ``minutes`` minutes."""

    LOOKBACK = 10
    """Seconds re-read at every refresh (late acknowledgements land there)."""

    def __init__(self, minutes: int = 60) -> None:
        self.minutes = minutes
        """How much history is kept (and back-filled); a longer chart range raises it."""
        self.completed: dict[int, int] = {}
        self.failed: dict[int, int] = {}
        self.loaded_from: int | None = None
        self.chunk = 600
        """Seconds of history back-filled per refresh; adapts to keep reads short."""

    def update(self, store: Store, now: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Read what is new (and one chunk of older history); return the last hour by minute."""
        end = (int(now) // 60 + 1) * 60
        start = end - self.minutes * 60
        fresh = int(now) - self.LOOKBACK
        if self.loaded_from is None or self.loaded_from > fresh:
            self.loaded_from = max(start, fresh)
        completed, failed = finished_per_second(store, fresh)
        for counts, new in ((self.completed, completed), (self.failed, failed)):
            for second in [s for s in counts if s >= fresh]:
                del counts[second]
            counts.update(new)
        if self.loaded_from > start:
            low = max(start, self.loaded_from - self.chunk)
            began = time.perf_counter()
            completed, failed = finished_per_second(store, low, self.loaded_from)
            took = time.perf_counter() - began
            self.chunk = max(60, self.chunk // 2) if took > 0.03 else (
                min(3600, self.chunk * 2) if took < 0.01 else self.chunk)
            self.completed.update(completed)
            self.failed.update(failed)
            self.loaded_from = low
        for counts in (self.completed, self.failed):
            for second in [s for s in counts if s < start]:
                del counts[second]
        hour = _hour_start(now)
        return (self._bucket(self.completed, hour, 60, 60),
                self._bucket(self.failed, hour, 60, 60))

    def last_minute(self, now: float) -> int:
        """Completions in the last 60 seconds (what ``done/min`` shows)."""
        since = int(now) - 59
        return sum(n for second, n in self.completed.items() if second >= since)

    def buckets(self, start: int) -> tuple[int, ...]:
        """Completions per minute for the hour from ``start``."""
        return self._bucket(self.completed, start, 60, 60)

    def series(self, name: str, now: float) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """(first bucket's start, completions, failures) per bucket of chart range ``name``.

        Buckets are aligned to the clock; the last one is the current, partial one.
        """
        width, count = RANGES[name]
        start = (int(now) // width + 1) * width - width * count
        return (start, self._bucket(self.completed, start, width, count),
                self._bucket(self.failed, start, width, count))

    def hour_loaded(self, now: float) -> bool:
        """Whether the whole last hour has been read (what the error rate is over)."""
        return self.loaded_from is not None and self.loaded_from <= _hour_start(now)

    def loaded_since(self) -> int | None:
        """The oldest second whose history has been read (None before the first read)."""
        return self.loaded_from

    def _bucket(self, counts: dict[int, int], start: int, width: int,
                count: int) -> tuple[int, ...]:
        buckets = [0] * count
        for second, n in counts.items():
            index = (second - start) // width
            if 0 <= index < count:
                buckets[index] += n
        return tuple(buckets)


def _hour_start(now: float) -> int:
    """The first second of the last hour, by minutes aligned to the clock (the current,
    partial minute last)."""
    return (int(now) // 60 + 1) * 60 - 3600
