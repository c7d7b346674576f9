"""Misfire catch-up: which slots missed during downtime still run, by the schedule's policy.

Pure, like the cron math: the scheduler passes the missed slots and ``now``, so
the choice is the same on every host and in every test.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from runner.errors import InvalidSchedule
from runner.scheduling.cron import message_prefix
from runner.sections import MISFIRE_POLICIES

#: Misfire policies accepted by :func:`plan_misfire`.
POLICIES = MISFIRE_POLICIES


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
    where = message_prefix(name)
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
