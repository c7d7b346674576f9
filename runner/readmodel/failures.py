"""Failed jobs grouped by error, for the dashboard's Failures screen.

Groups the newest failed jobs, up to :data:`FAILURE_CAP` of them: all of them
while there are no more, and a refresh costs the same with a million dead jobs
(the screen then says its counts are of the newest ones). Messages that differ
only in their numbers ("host:1" ... "host:6", "after 3.2s") make one group;
each group keeps its exact messages so the screen can expand it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runner.store.backend import Store
from runner.store.views import FAILURE_CAP

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
    """The tasks in the group by name, comma-separated (the first few, +N for the rest)."""
    last_failed_at: float | None
    messages: tuple[ExactMessage, ...] = ()
    """The exact messages, most frequent first."""


def failure_groups(store: Store, *, limit: int = 200,
                   cap: int | None = None) -> list[FailureGroup]:
    """The newest ``cap`` (:data:`FAILURE_CAP`) retrying and dead jobs grouped by error
    type and masked message, biggest first."""
    rows = store.failure_rows(limit=MAX_EXACT, cap=FAILURE_CAP if cap is None else cap)
    merged: dict[tuple[str | None, str | None], list[tuple]] = {}
    for row in rows:
        merged.setdefault((row[0], mask_numbers(row[1])), []).append(row)
    groups = []
    for (error_type, shape), members in merged.items():
        # By name: backends list a message's tasks in no set order (SQLite's group_concat
        # follows its scan), and the screen should not reorder them between reads.
        names = sorted({n for member in members for n in (member[5] or "").split(",") if n})
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


def group_messages(store: Store, error_type: str | None, message: str | None
                   ) -> list[str | None]:
    """The exact messages of every retrying and dead job in the group of ``error_type``
    and ``message`` (an exact message or a shape with numbers as ``#``), past the cap.

    A message without numbers is its own group; otherwise the failed jobs of the
    error type that start as the shape does are read, and those of its shape kept.
    """
    shape = mask_numbers(message)
    if shape is None or "#" not in shape:
        return [message]
    prefix = shape.split("#", 1)[0]
    return [m for m in store.failure_messages(error_type, prefix=prefix)
            if mask_numbers(m) == shape]


def failure_signature(store: Store, *, cap: int | None = None) -> tuple[int, int]:
    """Changes whenever a failure group may have: (failed jobs, newest failed attempt id).

    Two cheap reads; failed jobs are counted no further than ``cap + 1``
    (:data:`FAILURE_CAP`), so a count past ``cap`` says :func:`failure_groups`
    grouped only the newest ``cap``.
    """
    return store.failure_signature(cap=FAILURE_CAP if cap is None else cap)


def capped(signature: tuple[int, int], cap: int | None = None) -> bool:
    """True when a :func:`failure_signature` counted more failed jobs than are grouped."""
    return signature[0] > (FAILURE_CAP if cap is None else cap)
