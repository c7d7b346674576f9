"""Plain-text rendering helpers shared by the CLI commands.

Every cell and field value goes through :func:`~runner.printable.one_line`, so
text from jobs (arguments, error messages, event data) cannot break a listing
into forged lines or send escape sequences to the terminal.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from runner.durations import age
from runner.printable import one_line

__all__ = ["age", "counted", "cpu", "key_values", "memory", "progress", "table", "when"]


def when(ts: float | None) -> str:
    """An epoch time as local ISO-ish text, or '-'."""
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def counted(n: int, noun: str) -> str:
    """``1 queue``, ``3 queues``: a count with its noun, plural but for one."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def memory(rss_bytes: int | None) -> str:
    """Resident memory as '57MiB', or '-' before the worker's first measurement.

    A worker's row exists from its registration; its lifeline measures the process
    only at its first beat, and 0MiB would read as a process using no memory.
    """
    return "-" if rss_bytes is None else f"{rss_bytes / 2**20:.0f}MiB"


def cpu(percent: float | None) -> str:
    """CPU use as '0.5%', or '-' before the worker's first measurement (see :func:`memory`)."""
    return "-" if percent is None else f"{percent:.1f}%"


def progress(done: float | None, total: float | None) -> str:
    """'40%' or '12/30' or '12' or ''."""
    if done is None:
        return ""
    if total:
        return f"{100 * done / total:.0f}%"
    return f"{done:g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A left-aligned text table."""
    text = [[str(c) for c in headers]] + [["" if c is None else one_line(c) for c in r]
                                          for r in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in text]
    return "\n".join(lines)


def key_values(pairs: Sequence[tuple[str, object]]) -> str:
    """``key: value`` lines with the keys right-aligned."""
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{key.rjust(width)}: {one_line(value)}" for key, value in pairs)
