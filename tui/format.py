"""How numbers, times and ages read on screen (pure functions, no Textual)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.markup import escape
from rich.text import Text

from runner.durations import under_a_minute

_BLOCKS = " ▏▎▍▌▋▊▉█"


def age(seconds: float | None) -> str:
    """``4s``, ``3m05s``, ``2h10m``, ``3d4h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def duration(seconds: float | None) -> str:
    """A run time with a useful precision: ``12ms``, ``3.4s``, ``2m05s``."""
    if seconds is None:
        return "-"
    short = under_a_minute(seconds)
    return age(seconds) if short is None else short


def stamp(ts: float | None, now: float | None = None) -> str:
    """Local ``HH:MM:SS`` for today, ``MM-DD HH:MM`` for other days."""
    if ts is None:
        return "-"
    when = dt.datetime.fromtimestamp(ts)
    if now is not None and dt.datetime.fromtimestamp(now).date() == when.date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%m-%d %H:%M")


def short_age(seconds: float) -> str:
    """``12s``, ``3m``, ``2h10m``, ``3d4h``: an age read at a glance."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def relative(ts: float | None, now: float, *, coarse: bool = False) -> str:
    """``3m ago`` for the past, ``in 12s`` for the future, ``now`` within a second.

    ``coarse`` says ``<1m`` under a minute: a table of many rows then changes
    once a minute rather than every second (each changed cell costs a repaint).
    """
    if ts is None:
        return "-"
    delta = ts - now
    if coarse and abs(delta) < 60:
        return "in <1m" if delta > 0 else "<1m ago"
    if abs(delta) < 1:
        return "now"
    return f"in {short_age(delta)}" if delta > 0 else f"{short_age(delta)} ago"


def zoned(ts: float | None, tz: str, now: float) -> str:
    """``09:00 Europe/Paris`` (today there) or ``01-06 09:00 UTC``: a time in a named zone."""
    if ts is None:
        return "-"
    try:
        zone: dt.tzinfo = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone, tz = dt.UTC, "UTC"
    when = dt.datetime.fromtimestamp(ts, zone)
    today = dt.datetime.fromtimestamp(now, zone).date() == when.date()
    return f"{when.strftime('%H:%M' if today else '%m-%d %H:%M')} {tz}"


def local_zone() -> str:
    """The abbreviation of the local time zone the dashboard's times are in (``UTC``, ``CET``)."""
    return dt.datetime.now().astimezone().tzname() or "local"


def full_stamp(ts: float | None) -> str:
    """Local ``YYYY-MM-DD HH:MM:SS``."""
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def count(n: int | float) -> str:
    """Thousands separated: ``1,204,331``."""
    return f"{n:,.0f}"


def short_count(n: int | float) -> str:
    """``950``, ``12k``, ``1.2k``, ``3.4M``: a count in at most four or five cells."""
    n = int(n)
    for limit, unit in ((1_000_000, "M"), (1_000, "k")):
        if abs(n) >= limit:
            scaled = n / limit
            return f"{scaled:.1f}{unit}" if abs(scaled) < 10 else f"{scaled:.0f}{unit}"
    return str(n)


def rate(value: float | None) -> str:
    """A fraction as a percentage, ``-`` when unknown."""
    return "-" if value is None else f"{value * 100:.1f}%"


def size(n: int | None) -> str:
    """Bytes as ``123.4 MB``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def progress_bar(done: float | None, total: float | None, width: int = 10) -> str:
    """``█████▌     55%``; empty when the job reports no progress."""
    if done is None:
        return ""
    if not total:
        return f"{done:g}"
    fraction = min(1.0, max(0.0, done / total))
    eighths = int(fraction * width * 8)
    bar = "█" * (eighths // 8) + (_BLOCKS[eighths % 8] if eighths % 8 else "")
    return f"{bar:<{width}} {fraction * 100:3.0f}%"


def one_line(text: str | None, limit: int = 80) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def path_tails(path: str) -> list[str]:
    """Shorter names for a database path or URL, longest first: ``…/data/jobs.db``, ``jobs.db``.

    The end of a path says the most (the file, the database of a URL); the
    folders before it are what a narrow line can spare.
    """
    parts = [part for part in path.rstrip("/").split("/") if part]
    tails = [f"…/{parts[-2]}/{parts[-1]}"] if len(parts) > 2 else []
    return tails + ([parts[-1]] if len(parts) > 1 else [])


def safe(text: str | None) -> str:
    """Text shown as is inside markup (``[`` in error messages is not a tag).

    The escape is Rich's: tables parse their cells as Rich markup, and text
    widgets must be given :func:`markup`, not the string itself.
    """
    return escape(text or "")


def markup(text: str) -> Text:
    """Markup made with :func:`safe`, parsed as Rich markup for a ``Static``.

    Textual's own parser (a ``Static`` given a string) reads markup another
    way: an unclosed ``[`` in a value (arguments cut at 2,000 characters, an
    error message) swallows the tags after it, or raises.
    """
    return Text.from_markup(text)
