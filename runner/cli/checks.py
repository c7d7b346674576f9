"""Range checks of command-line values, before anything is written.

argparse accepts ``nan``, ``inf`` and ``1e300`` as floats and any size of
integer; SQLite and ``datetime`` do not, and would fail later with a traceback.
"""

from __future__ import annotations

from runner import call_options
from runner.errors import InvalidArgument


def delay(option: str, text: str | None) -> float | None:
    """A delay in seconds: finite, not negative, at most 100 years (as a call's ``delay=``).
    Parsed here rather than by argparse, so that text that is no number is refused in the
    same words and with the same exit code (65) as a number out of range."""
    return None if text is None else call_options.seconds(option, _number(text, float))


def priority(option: str, text: str | None) -> int | None:
    """A priority that fits SQLite's 64-bit INTEGER (as a call's ``priority=``)."""
    return None if text is None else call_options.whole(option, _number(text, int),
                                                        *call_options.PRIORITY_RANGE)


def _number(text: str, kind: type) -> object:
    """``text`` as a ``kind``, else as any number it reads as (1.5 for a whole number), else
    the text itself: the checks above then name what they expected."""
    for convert in (kind, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def limit(option: str, value: int) -> int:
    """How many rows a listing shows: at least one (0 would show nothing, and a negative
    number every row, with no word of either)."""
    if value < 1:
        raise InvalidArgument(f"{option} {value}: expected a whole number of at least 1")
    return value
