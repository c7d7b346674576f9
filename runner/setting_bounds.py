"""How large each numeric setting may be, checked at load as its lower bound is.

TOML and Python take numbers of any size; what a setting feeds does not. Past
these bounds a value breaks the worker rather than tuning it: more threads than
a process can start (the worker never says it started and ignores SIGTERM), a
wait past ``threading.TIMEOUT_MAX`` (an ``OverflowError`` in every thread that
waits), a busy timeout past SQLite's 32-bit milliseconds (it turns into no wait
at all), an integer past SQLite's and PostgreSQL's 64 bits, a time past what a
``datetime`` holds. Each section declares the bound of every numeric key in its
``MAXIMA`` (the tests hold that none is left out); :func:`too_large` checks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Most:
    """The largest value a key takes, and how a message names it."""

    value: int | float
    unit: str = ""
    """What the number counts, e.g. "seconds (a day)"; empty for a plain number."""

    def __str__(self) -> str:
        number = int(self.value) if float(self.value).is_integer() else self.value
        return f"{number} {self.unit}" if self.unit else str(number)


#: Every whole number goes into SQLite's (and PostgreSQL's BIGINT) 64-bit integer.
INT64 = 2**63 - 1
WHOLE = Most(INT64)
#: Threads of one worker process: past a thousand or so a process cannot start them all.
THREADS = Most(1024, "(threads)")
#: Jobs, rows, starts, retries: far beyond any real queue, well inside every store.
COUNT = Most(1_000_000_000)
#: Waits and intervals the worker sleeps on (``threading`` allows about 292 years,
#: SQLite's busy timeout 24 days).
DAY = Most(86_400, "seconds (a day)")
#: A heartbeat: at least two of them fit in a lease, which is at most a day.
HALF_DAY = Most(43_200, "seconds (half a day)")
#: Lengths of time a job may take or wait; a year ahead is a ``datetime`` still.
YEAR = Most(365 * 86_400, "seconds (a year)")
#: Retention ages, in days.
CENTURY = Most(36_500, "days")
#: A multiplier or fraction (``backoff``, ``jitter``).
FACTOR = Most(100)
#: SQLite's largest page count.
PAGES = Most(4_294_967_294, "(pages)")
#: Rotated log files: each rollover renames every one of them.
LOG_FILES = Most(1000, "(files)")
#: One job's or event's payload: SQLite (1e9 bytes), PostgreSQL (1 GB) and Redis (512 MB)
#: each refuse a value that large, so a higher bound bounds nothing.
PAYLOAD_MB = Most(1024, "MiB (a GiB: no backend stores a value that large)")

#: A section's declared bounds, by key; None: any finite value works.
Maxima = Mapping[str, Most | None]


def too_large(section: object) -> list[tuple[str, str]]:
    """The keys of ``section`` over their bound, as (key, why)."""
    maxima: Maxima = getattr(section, "MAXIMA", {})
    found = []
    for f in fields(section):  # type: ignore[arg-type]
        value, most = getattr(section, f.name), maxima.get(f.name)
        if most is not None and isinstance(value, (int, float)) and value > most.value:
            found.append((f.name, f"must be at most {most}, got {value!r}"))
    return found
