"""Durations as short text, for every reader: CLI tables, health problems, metrics."""

from __future__ import annotations


def under_a_minute(seconds: float) -> str | None:
    """'850ms' or '12.3s' below a minute, where the fraction still tells; None from a minute on."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return None


def age(seconds: float | None) -> str:
    """A duration as '850ms', '12.3s', '4m05s', '3h02m' or '2d04h'."""
    if seconds is None:
        return "-"
    short = under_a_minute(seconds)
    if short is not None:
        return short
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
