"""Failed jobs grouped by error, for the dashboard's Failures screen.

Reads the partial index ``runner_job_failure`` (failed rows only), so the cost
is the number of failed jobs, never the history. Messages that differ only in
their numbers ("host:1" ... "host:6", "after 3.2s") make one group; each group
keeps its exact messages so the screen can expand it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runner.readmodel.dashboard import index_hint
from runner.store.db import Database

#: Exact (type, message) pairs read at most; beyond this the smallest are left out.
MAX_EXACT = 20_000
_NUMBER = re.compile(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?")


def mask_numbers(message: str | None) -> str | None:
    """``host:12 after 3.5s`` -> ``host:# after #s``: the shape of a message."""
    return None if message is None else _NUMBER.sub("#", message)


@dataclass(frozen=True)
class ExactMessage:
    """One exact message inside a failure group."""

    message: str | None
    count: int
    dead: int
    retrying: int
    last_failed_at: float | None


@dataclass(frozen=True)
class FailureGroup:
    """Failed jobs (retrying or dead) that share an error type and message shape."""

    error_type: str | None
    message: str | None
    """The exact message when the group has one, else its shape (numbers as ``#``)."""
    count: int
    dead: int
    retrying: int
    tasks: str
    """The tasks in the group, comma-separated (at most a few)."""
    last_failed_at: float | None
    messages: tuple[ExactMessage, ...] = ()
    """The exact messages, most frequent first."""


def failure_groups(db: Database, *, limit: int = 200) -> list[FailureGroup]:
    """Retrying and dead jobs grouped by error type and masked message, biggest first."""
    rows = db.query(
        "SELECT error_type, error_message, count(*), sum(state = 'dead'), "
        "sum(state = 'retrying'), group_concat(DISTINCT task), max(last_failed_at) "
        f"FROM runner_job{index_hint(db, 'runner_job_failure')} "
        "WHERE state IN ('retrying','dead') "
        "GROUP BY error_type, error_message ORDER BY count(*) DESC, max(last_failed_at) DESC "
        "LIMIT ?", (MAX_EXACT,))
    merged: dict[tuple[str | None, str | None], list[tuple]] = {}
    for row in rows:
        merged.setdefault((row[0], mask_numbers(row[1])), []).append(row)
    groups = []
    for (error_type, shape), members in merged.items():
        names: list[str] = []
        for member in members:
            names += [n for n in (member[5] or "").split(",") if n and n not in names]
        shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        exact = tuple(ExactMessage(m[1], m[2], int(m[3] or 0), int(m[4] or 0), m[6])
                      for m in members)
        lasts = [m.last_failed_at for m in exact if m.last_failed_at is not None]
        groups.append(FailureGroup(
            error_type, exact[0].message if len(exact) == 1 else shape,
            sum(m.count for m in exact), sum(m.dead for m in exact),
            sum(m.retrying for m in exact), shown, max(lasts, default=None), exact))
    groups.sort(key=lambda g: (-g.count, -(g.last_failed_at or 0)))
    return groups[:limit]


def failure_group_ids(db: Database, error_type: str | None,
                      message: str | None | list[str | None], *,
                      limit: int = 100_000) -> list[str]:
    """Ids of the retrying and dead jobs with ``error_type`` and one of the messages."""
    messages = message if isinstance(message, list) else [message]
    ids: list[str] = []
    for text in messages:
        rows = db.query(
            f"SELECT id FROM runner_job{index_hint(db, 'runner_job_failure')} "
            "WHERE state IN ('retrying','dead') "
            "AND error_type IS ? AND error_message IS ? LIMIT ?",
            (error_type, text, limit - len(ids)))
        ids += [r[0] for r in rows]
        if len(ids) >= limit:
            break
    return ids


def failure_signature(db: Database) -> tuple[int, int]:
    """Changes whenever a failure group may have: (failed jobs, newest failed attempt id).

    Two cheap reads; the Failures screen groups again only when this changes.
    """
    count = db.query(f"SELECT count(*) FROM runner_job{index_hint(db, 'runner_job_failure')} "
                     "WHERE state IN ('retrying','dead')")[0][0]
    newest = db.query("SELECT max(id) FROM runner_job_error")[0][0]
    return count, newest or 0
