"""Plain-text rendering helpers shared by the CLI commands."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from runner.durations import age

__all__ = ["age", "progress", "table", "when"]


def when(ts: float | None) -> str:
    """An epoch time as local ISO-ish text, or '-'."""
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def progress(done: float | None, total: float | None) -> str:
    """'40%' or '12/30' or '12' or ''."""
    if done is None:
        return ""
    if total:
        return f"{100 * done / total:.0f}%"
    return f"{done:g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A left-aligned text table."""
    text = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in text]
    return "\n".join(lines)
