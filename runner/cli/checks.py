"""Range checks of command-line values, before anything is written.

argparse accepts ``nan``, ``inf`` and ``1e300`` as floats and any size of
integer; SQLite and ``datetime`` do not, and would fail later with a traceback.
"""

from __future__ import annotations

import math

from runner.errors import InvalidArgument

#: Longest delay accepted (100 years): later times do not fit a datetime everywhere.
MAX_DELAY = 100 * 365.25 * 86400
#: SQLite's INTEGER range.
PRIORITY_RANGE = (-(2**63), 2**63 - 1)


def delay(option: str, value: float | None) -> float | None:
    """A delay in seconds: finite, not negative, at most :data:`MAX_DELAY`."""
    if value is None:
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_DELAY:
        raise InvalidArgument(f"{option} {value!r}: expected seconds between 0 and "
                              f"{MAX_DELAY:.0f} (100 years); nothing was written")
    return value


def priority(option: str, value: int | None) -> int | None:
    """A priority that fits SQLite's 64-bit INTEGER."""
    if value is None:
        return None
    low, high = PRIORITY_RANGE
    if not low <= value <= high:
        raise InvalidArgument(f"{option} {value}: expected a whole number between {low} and "
                              f"{high}; nothing was written")
    return value


def limit(option: str, value: int) -> int:
    """How many rows a listing shows: at least one (0 would show nothing, and a negative
    number every row, with no word of either)."""
    if value < 1:
        raise InvalidArgument(f"{option} {value}: expected a whole number of at least 1")
    return value
