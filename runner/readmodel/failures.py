"""Failed jobs grouped by error, for the dashboard's Failures screen.

Reads the partial index ``runner_job_failure`` (failed rows only), so the cost
is the number of failed jobs, never the history.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.store import stats
from runner.store.db import Database
from runner.store.stats import failure_group_ids, failure_signature


@dataclass(frozen=True)
class FailureGroup:
    """Failed jobs (retrying or dead) that share an error type and message."""

    error_type: str | None
    message: str | None
    count: int
    dead: int
    retrying: int
    tasks: str
    """The tasks in the group, comma-separated (at most a few)."""
    last_failed_at: float | None


def failure_groups(db: Database, *, limit: int = 200) -> list[FailureGroup]:
    """Retrying and dead jobs grouped by error type and message, biggest group first."""
    groups = []
    for error_type, message, count, dead, retrying, tasks, last in stats.failure_rows(
            db, limit=limit):
        names = (tasks or "").split(",")
        shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        groups.append(FailureGroup(error_type, message, count, int(dead or 0),
                                   int(retrying or 0), shown, last))
    return groups


__all__ = ["FailureGroup", "failure_groups", "failure_group_ids", "failure_signature"]
