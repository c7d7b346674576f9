"""Failed jobs grouped by error, for the dashboard's Failures screen.

Reads the partial index ``runner_job_failure`` (failed rows only), so the cost
is the number of failed jobs, never the history.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.readmodel.dashboard import index_hint
from runner.store.db import Database


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
    rows = db.query(
        "SELECT error_type, error_message, count(*), sum(state = 'dead'), "
        "sum(state = 'retrying'), group_concat(DISTINCT task), max(last_failed_at) "
        f"FROM runner_job{index_hint(db, 'runner_job_failure')} "
        "WHERE state IN ('retrying','dead') "
        "GROUP BY error_type, error_message ORDER BY count(*) DESC, max(last_failed_at) DESC "
        "LIMIT ?", (limit,))
    groups = []
    for error_type, message, count, dead, retrying, tasks, last in rows:
        names = (tasks or "").split(",")
        shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        groups.append(FailureGroup(error_type, message, count, int(dead or 0),
                                   int(retrying or 0), shown, last))
    return groups


def failure_group_ids(db: Database, error_type: str | None, message: str | None, *,
                      limit: int = 100_000) -> list[str]:
    """Ids of the retrying and dead jobs of one failure group (for bulk actions)."""
    rows = db.query(
        f"SELECT id FROM runner_job{index_hint(db, 'runner_job_failure')} "
        "WHERE state IN ('retrying','dead') "
        "AND error_type IS ? AND error_message IS ? LIMIT ?", (error_type, message, limit))
    return [r[0] for r in rows]


def failure_signature(db: Database) -> tuple[int, int]:
    """Changes whenever a failure group may have: (failed jobs, newest failed attempt id).

    Two cheap reads; the Failures screen groups again only when this changes.
    """
    count = db.query(f"SELECT count(*) FROM runner_job{index_hint(db, 'runner_job_failure')} "
                     "WHERE state IN ('retrying','dead')")[0][0]
    newest = db.query("SELECT max(id) FROM runner_job_error")[0][0]
    return count, newest or 0
