"""Cron schedule math: parse expressions, find fire times across DST, plan misfire catch-up.

Everything here is pure: functions take ``now``/``after`` as timezone-aware datetimes and never
read the clock. croniter is used only in this module, and only on naive *wall-clock* datetimes;
mapping wall-clock slots to real instants is done here, because croniter's own time zone
handling fires a fall-back repeated time (e.g. a daily 02:30) twice.
"""

from __future__ import annotations

import copy
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice, takewhile
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from runner.errors import InvalidSchedule
from runner.scheduling.cron_fields import out_of_range
from runner.sections import MISFIRE_POLICIES

#: Misfire policies accepted by :func:`plan_misfire`.
POLICIES = MISFIRE_POLICIES

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
_PROBE_START = datetime(2000, 1, 1)
# Longer than any fall-back repeat, so a repeat ahead of `after` shows as a lower offset there.
_FOLD_HORIZON = timedelta(hours=26)


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


def _prefix(name: str | None) -> str:
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
    where = _prefix(name)

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
        probe = croniter(normalized, _PROBE_START, hash_id=hash_id, second_at_beginning=has_seconds)
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
            croniter(expression, _PROBE_START, hash_id=hash_id,
                     second_at_beginning=has_seconds).get_next()
        except CroniterBadDateError:
            return False
        except (CroniterError, ValueError):
            return True
        return False

    return out_of_range(fields, has_seconds, refused)


def next_fire(spec: CronSpec, after: datetime) -> datetime:
    """Return the first fire time strictly after ``after``.

    Slots are wall-clock times in ``spec.tz``; each maps to real instants like this:

    * A wall time that does not exist (spring-forward gap) fires once, at the first valid
      instant after it: a daily 02:30 in Europe/Berlin on 2026-03-29 fires at 03:00 CEST
      (01:00 UTC). Several slots inside one gap collapse into that one instant.
    * A wall time that happens twice (fall back) fires once, at its first occurrence: a daily
      02:30 in Europe/Berlin on 2026-10-25 fires at 02:30 CEST (00:30 UTC) only.
    * Exception for schedules whose hour field matches all 24 hours (hourly, ``*/15 * * * *``,
      every-second ...): they follow real time. Both occurrences of a repeated hour fire
      (02:00 CEST and 02:00 CET are different real hours), and slots inside a gap are dropped,
      since the real hour they would stand for is served by the slots after the jump. An
      hourly schedule fires 23 times on spring-forward day and 25 times on fall-back day;
      every real hour fires exactly once.

    Args:
        spec: The schedule.
        after: A timezone-aware datetime, in any zone.

    Returns:
        An aware UTC datetime.

    Raises:
        ValueError: ``after`` is naive.
        InvalidSchedule: No fire time within croniter's 50-year search window.
    """
    for slot in _instants(spec, after):
        return slot
    raise InvalidSchedule(
        f"{_prefix(spec.name)}cron expression {spec.expr!r} does not fire after {after}"
    )


def fire_times(spec: CronSpec, after: datetime, n: int) -> list[datetime]:
    """Return the next ``n`` fire times after ``after`` (rules as :func:`next_fire`).

    Args:
        spec: The schedule.
        after: A timezone-aware datetime.
        n: How many fire times to return (may be 0).

    Returns:
        Strictly increasing aware UTC datetimes (fewer than ``n`` only if the schedule stops).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return list(islice(_instants(spec, after), n))


def slots_between(spec: CronSpec, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """Return the fire times ``s`` with ``start < s <= end``, the earliest ``limit`` of them.

    Args:
        spec: The schedule.
        start: Exclusive lower bound, timezone-aware (e.g. the last slot that ran).
        end: Inclusive upper bound, timezone-aware (e.g. now).
        limit: Most slots to return; bounds the work after a long downtime.

    Returns:
        Strictly increasing aware UTC datetimes.
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    slots = takewhile(lambda s: s <= end, _instants(spec, start))
    return list(islice(slots, limit))


def plan_misfire(
    policy: str,
    missed: list[datetime],
    now: datetime,
    *,
    grace: float,
    max_catchup: int,
    name: str | None = None,
) -> list[datetime]:
    """Choose which missed slots to run after downtime.

    Policies: ``skip`` runs none, except slots at most ``grace`` seconds before ``now`` (they
    are late, not missed); ``once`` runs one catch-up, for the latest missed slot; ``all`` runs
    each missed slot, at most ``max_catchup`` of them, keeping the most recent. Slots after
    ``now`` are not missed and are ignored; duplicates count once.

    Args:
        policy: One of :data:`POLICIES`.
        missed: Slots that did not run (any order), timezone-aware.
        now: The current time, timezone-aware.
        grace: Seconds a slot may be late and still run under ``skip``.
        max_catchup: Cap on the runs under ``all``.
        name: Schedule name for error messages.

    Returns:
        The slots to run, oldest first.

    Raises:
        InvalidSchedule: Unknown policy, negative ``grace`` or ``max_catchup``.
    """
    where = _prefix(name)
    if policy not in POLICIES:
        raise InvalidSchedule(
            f"{where}unknown misfire policy {policy!r} (expected one of {', '.join(POLICIES)})"
        )
    if grace < 0:
        raise InvalidSchedule(f"{where}misfire grace must be >= 0 seconds, got {grace}")
    if max_catchup < 0:
        raise InvalidSchedule(f"{where}max_catchup must be >= 0, got {max_catchup}")
    due = sorted({slot for slot in missed if slot <= now})
    if policy == "skip":
        cutoff = now - timedelta(seconds=grace)
        return [slot for slot in due if slot >= cutoff]
    if policy == "once":
        return due[-1:]
    return due[max(len(due) - max_catchup, 0) :] if max_catchup else []


def is_hashed(spec: CronSpec) -> bool:
    """True when the expression uses croniter's hashed ``H`` values."""
    return _uses(_HASHED_RE, spec.normalized)


def _uses(pattern: re.Pattern[str], normalized: str) -> bool:
    """True if any list item of any field matches ``pattern``."""
    return any(pattern.match(item) for f in normalized.split() for item in f.split(","))


def _instants(spec: CronSpec, after: datetime) -> Iterator[datetime]:
    """Yield the fire instants strictly after ``after``, ascending, as aware UTC datetimes."""
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be timezone-aware")
    after = after.astimezone(UTC)
    offset = after.astimezone(spec.zone).utcoffset() or timedelta()
    wall = (after + offset).replace(tzinfo=None, microsecond=0)
    slots = _after_wall(spec, wall, after)
    if spec.every_hour:
        slots = heapq.merge(_repeats_up_to(spec, wall, after, offset), slots)
    last = after
    for slot in slots:
        if slot > last:
            yield slot
            last = slot


@lru_cache(maxsize=4096)
def _template(normalized: str, hash_key: str | None, has_seconds: bool) -> croniter:
    """A croniter with the expression expanded once; expanding costs milliseconds per call."""
    return croniter(
        normalized,
        _PROBE_START,
        ret_type=datetime,
        hash_id=hash_key.encode() if hash_key is not None else None,
        second_at_beginning=has_seconds,
    )


def _walls(spec: CronSpec, start: datetime) -> Iterator[datetime]:
    """Yield the naive wall-clock slots strictly after ``start``."""
    # A shallow copy shares the expanded fields (read-only) and has its own position.
    walls = copy.copy(_template(spec.normalized, spec.hash_key, spec.has_seconds))
    walls.set_current(start, force=True)
    try:
        while True:
            yield walls.get_next()
    except CroniterBadDateError:  # no further slot within croniter's 50-year window
        return


def _after_wall(spec: CronSpec, wall: datetime, after: datetime) -> Iterator[datetime]:
    """Yield the instants after ``after`` of the wall slots after ``wall``, ascending."""
    pending: list[datetime] = []
    gaps: list[datetime] = []
    for slot in _walls(spec, wall):
        floor, found = _place(slot, spec.zone, spec.every_hour, gaps)
        pending.extend(instant for instant in found if instant > after)
        pending.sort()
        # Later wall slots never map before `floor`, so pending instants up to it are final.
        while pending and pending[0] <= floor:
            yield pending.pop(0)
    yield from pending


def _repeats_up_to(
    spec: CronSpec, wall: datetime, after: datetime, offset: timedelta
) -> Iterator[datetime]:
    """Yield the second occurrences, after ``after``, of repeated wall slots up to ``wall``.

    Only when ``after`` lies in the first pass of a fall-back hour: those wall slots are not
    after ``wall``, yet their second occurrence is still to come.
    """
    later = after + _FOLD_HORIZON
    post = later.astimezone(spec.zone).utcoffset() or timedelta()
    if post >= offset:
        return
    change = _transition(after, later, spec.zone)
    first = (change + post).replace(tzinfo=None)  # earliest wall time that repeats
    for slot in _walls(spec, first - timedelta(seconds=1)):
        if slot > wall:
            return
        yield (slot - post).replace(tzinfo=UTC)


def _place(
    wall: datetime, zone: ZoneInfo, every_hour: bool, gaps: list[datetime]
) -> tuple[datetime, tuple[datetime, ...]]:
    """Map a naive wall slot to ``(floor, instants)``.

    ``instants`` are the real instants the slot fires at; ``floor`` is a lower bound on the
    instants of this and every later wall slot. ``gaps`` caches gap ends found so far.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return first, (first,)
    if first.astimezone(zone).replace(tzinfo=None) == wall:  # repeated: fold=0 comes first
        return first, (first, second) if every_hour else (first,)
    # In a gap the two readings straddle the jump, which is the first valid instant after it.
    before, after = min(first, second), max(first, second)
    if every_hour:
        return before, ()
    end = next((t for t in gaps[-1:] if before < t <= after), None)
    if end is None:
        end = _transition(before, after, zone)
        gaps.append(end)
    return end, (end,)


def _transition(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """Return the first instant in ``(before, after]`` with ``after``'s UTC offset."""
    target = after.astimezone(zone).utcoffset()
    lo, hi = before, after
    while hi - lo > timedelta(seconds=1):
        mid = (lo + (hi - lo) / 2).replace(microsecond=0)
        if mid.astimezone(zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi
