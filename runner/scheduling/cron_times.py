"""When a cron schedule fires, as real instants, across DST changes.

Everything here is pure: functions take ``now``/``after`` as timezone-aware datetimes and never
read the clock. croniter is used only on naive *wall-clock* datetimes; mapping wall-clock slots
to real instants is done here, because croniter's own time zone handling fires a fall-back
repeated time (e.g. a daily 02:30) twice.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice, takewhile
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from runner.errors import InvalidSchedule
from runner.scheduling.cron import PROBE_START, CronSpec, message_prefix

# Longer than any fall-back repeat, so a repeat ahead of `after` shows as a lower offset there.
_FOLD_HORIZON = timedelta(hours=26)


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
        f"{message_prefix(spec.name)}cron expression {spec.expr!r} does not fire after {after}"
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
        PROBE_START,
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
