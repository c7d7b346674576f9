"""Reuse an expensive read for a while, in proportion to what it cost.

Counting a backlog of a hundred thousand jobs costs tens of milliseconds; doing
it every second beside a busy worker is most of the dashboard's load. A read
that took ``t`` seconds is reused for ``t * factor`` seconds (at most ``cap``),
so cheap reads still run at every refresh and only costly ones thin out.
Explicit refreshes (``ctrl+r``, after an action) bypass it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Throttle:
    """Results of costly reads by key, each valid for a time set by its cost."""

    def __init__(self, *, factor: float = 100.0, cap: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.factor = factor
        self.cap = cap
        self.clock = clock
        self._kept: dict[str, tuple[float, Any]] = {}

    def read(self, key: str, fn: Callable[[], Any], *, fresh: bool = False) -> Any:
        """``fn()``, or its last result while that is still valid (``fresh`` forces a read)."""
        now = self.clock()
        kept = self._kept.get(key)
        if kept is not None and not fresh and now < kept[0]:
            return kept[1]
        began = time.perf_counter()
        value = fn()
        cost = time.perf_counter() - began
        self._kept[key] = (now + min(self.cap, cost * self.factor), value)
        return value

    def clear(self) -> None:
        """Forget every kept result."""
        self._kept.clear()
