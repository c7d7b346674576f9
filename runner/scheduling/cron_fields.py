"""The fields of a cron expression: their names and ranges, for messages croniter's lack."""

from __future__ import annotations

import re
from collections.abc import Callable

#: Each field's name and the values it takes (a day-of-week of 7 is Sunday, as 0 is).
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12),
          ("day-of-week", 0, 7))
#: The leading field of a 6-field expression.
SECOND = ("second", 0, 59)
_NUMBER_RE = re.compile(r"\d+")


def out_of_range(fields: list[str], has_seconds: bool,
                 refused: Callable[[str], bool]) -> str | None:
    """``minute 61 is out of range 0-59``: the first field that ``refused`` (the parser)
    refuses on its own, every other field ``*``, and that holds a number outside its
    range; None when there is none (the parser's reason then stands)."""
    names = ((SECOND,) if has_seconds else ()) + FIELDS
    for i, (value, (name, low, high)) in enumerate(zip(fields, names, strict=True)):
        alone = ["*"] * len(fields)
        alone[i] = value
        if not refused(" ".join(alone)):
            continue
        for part in value.split(","):
            # the numbers of a value, a range or H(a-b); not a step or a '#' nth weekday
            for number in map(int, _NUMBER_RE.findall(part.split("/")[0].split("#")[0])):
                if not low <= number <= high:
                    return f"{name} {number} is out of range {low}-{high}"
    return None
