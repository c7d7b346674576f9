"""The Jobs screen's "go to a time": what a user types, as a timestamp (pure)."""

from __future__ import annotations

import datetime as dt
import re

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])(?:\s+ago)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, now: float) -> float:
    """``14:05`` (today, local), ``2026-01-05 09:30``, ``2026-01-05``, ``90m`` or ``2h ago``.

    Raises:
        ValueError: the text is none of those, with the forms that work.
    """
    value = text.strip().lower()
    if match := _AGO.match(value):
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    today = dt.datetime.fromtimestamp(now).date()
    for form in ("%H:%M", "%H:%M:%S"):
        try:
            clock = dt.datetime.strptime(value, form).time()
        except ValueError:
            continue
        return dt.datetime.combine(today, clock).timestamp()
    try:
        return dt.datetime.fromisoformat(value.upper()).timestamp()
    except ValueError:
        pass
    raise ValueError(f"cannot read the time {text.strip()!r}: use 14:05, 2026-01-05 09:30, "
                     "2026-01-05 or 2h (ago)")
