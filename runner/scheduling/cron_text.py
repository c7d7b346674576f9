"""Schedules as text for ``runner cron explain``, worded as ``systemd-analyze calendar``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from runner.scheduling.cron import CronSpec, is_hashed
from runner.scheduling.cron_times import fire_times

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# systemd's two-unit spans: (size, unit, size of the second unit, second unit), in seconds.
_SPANS = (
    (31_557_600, "year", 2_629_800, "month"),
    (2_629_800, "month", 86_400, "day"),
    (604_800, "week", 86_400, "day"),
)


def explain(spec: CronSpec, now: datetime, n: int = 1) -> str:
    """Describe the schedule and its next ``n`` fire times, like ``systemd-analyze calendar``.

    Args:
        spec: The schedule.
        now: The current time, timezone-aware; "From now" is measured from it.
        n: How many fire times to list.

    Returns:
        Multi-line text, labels right-aligned as systemd prints them.
    """
    rows = [("Original form", spec.expr), ("Normalized form", spec.normalized)]
    if spec.hash_key is not None and is_hashed(spec):
        rows.append(("Hash key", spec.hash_key))
    rows.append(("Time zone", spec.tz))
    slots = fire_times(spec, now, n)
    if not slots:
        rows.append(("Next elapse", "never"))
    for i, slot in enumerate(slots):
        rows.append(("Next elapse" if i == 0 else f"Iteration #{i + 1}", _stamp(slot, spec.zone)))
        rows.append(("(in UTC)", _stamp(slot, UTC)))
        rows.append(("From now", _relative(slot - now)))
    return "\n".join(f"{label:>15}: {value}" for label, value in rows)


def _stamp(instant: datetime, zone: tzinfo) -> str:
    local = instant.astimezone(zone)
    return f"{_DAYS[local.weekday()]} {local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


def _relative(delta: timedelta) -> str:
    """Format a future delta the way systemd's ``format_timestamp_relative`` does."""
    us = delta // timedelta(microseconds=1)
    s = us // 1_000_000
    for size, big, part, small in _SPANS:
        if s >= size:
            n, m = s // size, s % size // part
            return f"{n} {big}{'s' * (n != 1)} {m} {small}{'s' * (m != 1)} left"
    if s >= 2 * 86400:
        text = f"{s // 86400} days"
    elif s >= 25 * 3600:
        text = f"1 day {s // 3600 - 24}h"
    elif s >= 6 * 3600:
        text = f"{s // 3600}h"
    elif s >= 3600:
        text = f"{s // 3600}h {s % 3600 // 60}min"
    elif s >= 300:
        text = f"{s // 60}min"
    elif s >= 60:
        text = f"{s // 60}min {s % 60}s"
    elif s >= 1:
        text = f"{s}s"
    elif us >= 1000:
        text = f"{us // 1000}ms"
    elif us > 0:
        text = f"{us}us"
    else:
        return "now"
    return f"{text} left"


