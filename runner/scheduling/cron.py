"""Cron expressions: parse and validate them into a ``CronSpec``.

A schedule must mean the same thing every time it is read, on any host, so an
expression is checked once, when a schedule is defined or overridden: its
fields, its time zone and that it can fire at all. croniter is used only in
this module and :mod:`runner.scheduling.cron_times`, which finds the fire
times of a ``CronSpec``; :mod:`runner.scheduling.misfire` plans the catch-up
after downtime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from runner.errors import InvalidSchedule
from runner.scheduling.cron_fields import out_of_range

# Aliases resolve to fixed expressions; croniter would hash them when given a hash id, which
# would make ``@daily`` mean "some time of day" instead of midnight.
_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# croniter splits on ASCII whitespace only; do the same so both see the same fields.
_FIELD_RE = re.compile(r"\S+", re.ASCII)
_RANDOM_RE = re.compile(r"^r(\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)
_HASHED_RE = re.compile(r"^h(\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)
_HOUR_FIELD = 1
# Fixed start for the "can it ever fire" probe, so validation never depends on the clock.
# croniter gives up after 50 years without a match, which bounds the probe.
PROBE_START = datetime(2000, 1, 1)


@dataclass(frozen=True)
class CronSpec:
    """A validated cron schedule; build it with :func:`parse`."""

    expr: str
    """The expression as given."""
    tz: str
    """IANA time zone name the expression is read in."""
    has_seconds: bool
    """True for 6-field expressions whose leading field is seconds."""
    name: str | None
    """Schedule name, used in error messages."""
    hash_key: str | None
    """Key that resolves ``H`` fields (defaults to the name)."""
    normalized: str
    """Expression handed to croniter: alias resolved, whitespace collapsed."""
    every_hour: bool
    """True if the hour field matches all 24 hours (decides the DST rules)."""
    zone: ZoneInfo = field(repr=False, compare=False)
    """The time zone object for ``tz``."""


def message_prefix(name: str | None) -> str:
    """How a message about schedule ``name`` begins (nothing for an unnamed one)."""
    return f"schedule {name!r}: " if name else ""


def parse(
    expr: str, *, tz: str = "UTC", name: str | None = None, hash_key: str | None = None
) -> CronSpec:
    """Validate a cron expression and time zone.

    Accepts 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading seconds
    field, the aliases ``@hourly @daily @midnight @weekly @monthly @yearly @annually``, and
    croniter's syntax: ranges, steps, lists, month/day names, ``L``, ``W``, ``#`` and hashed
    ``H`` fields. ``H`` resolves from ``hash_key`` (or ``name``), so schedules with the same
    expression spread out but each stays stable. Random ``R`` fields are refused: a schedule
    must mean the same thing every time it is parsed.

    Args:
        expr: The cron expression.
        tz: IANA time zone name the expression is read in.
        name: Schedule name, put in error messages and used as default hash key.
        hash_key: Key for ``H`` fields; defaults to ``name``.

    Returns:
        The validated schedule.

    Raises:
        InvalidSchedule: Not a string, wrong field count, bad field, step of 0, out-of-range
            value, ``H`` without a key, unknown time zone, or an expression that can never
            fire (``0 0 31 2 *``).
    """
    where = message_prefix(name)

    def fail(reason: str) -> NoReturn:
        raise InvalidSchedule(f"{where}{reason}")

    if not isinstance(expr, str):
        fail(f"cron expression must be a string such as '0 * * * *', got {expr!r}")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        fail(f"unknown time zone {tz!r} (expected an IANA name such as 'Europe/Berlin')")
    fields = _FIELD_RE.findall(expr)
    if len(fields) == 1 and fields[0].startswith("@"):
        alias = _ALIASES.get(fields[0].lower())
        if alias is None:
            fail(f"unknown cron alias {expr!r} (expected one of {', '.join(_ALIASES)})")
        fields = alias.split()
    if len(fields) not in (5, 6):
        fail(
            f"cron expression {expr!r} has {len(fields)} field(s); expected 5 "
            "(minute hour day-of-month month day-of-week) or 6 (seconds first)"
        )
    normalized = " ".join(fields)
    if _uses(_RANDOM_RE, normalized):
        fail(f"cron expression {expr!r} uses random 'R'; use 'H' for a stable spread")
    has_seconds = len(fields) == 6
    key = hash_key if hash_key is not None else name
    hash_id = key.encode() if key is not None else None
    try:
        probe = croniter(normalized, PROBE_START, hash_id=hash_id, second_at_beginning=has_seconds)
        probe.get_next()
    except CroniterBadDateError:
        fail(f"cron expression {expr!r} never fires")
    except (CroniterError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or ["malformed field"])[0]
        if "must include hash_id" in reason:
            reason = "'H' needs a hash key: the schedule's name (cron explain --name NAME)"
        else:
            if reason.startswith("Traceback"):  # croniter wraps unexpected errors so
                reason = "malformed field"
            reason = _out_of_range(fields, has_seconds, hash_id) or reason
        fail(f"invalid cron expression {expr!r}: {reason}")
    hours = probe.expanded[_HOUR_FIELD]
    every_hour = hours == ["*"] or set(hours) >= set(range(24))
    return CronSpec(
        expr=expr,
        tz=tz,
        has_seconds=has_seconds,
        name=name,
        hash_key=key,
        normalized=normalized,
        every_hour=every_hour,
        zone=zone,
    )


def _out_of_range(fields: list[str], has_seconds: bool, hash_id: bytes | None) -> str | None:
    """``minute 61 is out of range 0-59`` for a field croniter refuses on its own, or None
    (croniter's own message names neither the field nor its range)."""

    def refused(expression: str) -> bool:
        try:
            croniter(expression, PROBE_START, hash_id=hash_id,
                     second_at_beginning=has_seconds).get_next()
        except CroniterBadDateError:
            return False
        except (CroniterError, ValueError):
            return True
        return False

    return out_of_range(fields, has_seconds, refused)


def is_hashed(spec: CronSpec) -> bool:
    """True when the expression uses croniter's hashed ``H`` values."""
    return _uses(_HASHED_RE, spec.normalized)


def _uses(pattern: re.Pattern[str], normalized: str) -> bool:
    """True if any list item of any field matches ``pattern``."""
    return any(pattern.match(item) for f in normalized.split() for item in f.split(","))
