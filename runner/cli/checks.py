"""Range checks of command-line values, before anything is written.

argparse accepts ``nan``, ``inf`` and ``1e300`` as floats and any size of
integer; SQLite and ``datetime`` do not, and would fail later with a traceback.
"""

from __future__ import annotations

from runner import call_options
from runner.errors import InvalidArgument


def delay(option: str, value: float | None) -> float | None:
    """A delay in seconds: finite, not negative, at most 100 years (as a call's ``delay=``)."""
    return None if value is None else call_options.seconds(option, value)


def priority(option: str, value: int | None) -> int | None:
    """A priority that fits SQLite's 64-bit INTEGER (as a call's ``priority=``)."""
    return None if value is None else call_options.whole(option, value,
                                                         *call_options.PRIORITY_RANGE)


def limit(option: str, value: int) -> int:
    """How many rows a listing shows: at least one (0 would show nothing, and a negative
    number every row, with no word of either)."""
    if value < 1:
        raise InvalidArgument(f"{option} {value}: expected a whole number of at least 1")
    return value
