"""Write side used by the CLI and the dashboard: retry, discard, cancel.

Each action is one short ``BEGIN IMMEDIATE`` transaction that checks the state
it expects, so acting on a live worker's database is safe: a job that started
meanwhile is not touched, and the caller is told.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from runner.db import Database
from runner.errors import InvalidAction, JobNotFound
from runner.queries import get_job
from runner.wakeup import Notifier

RETRYABLE = ("dead", "cancelled", "retrying", "completed")
DISCARDABLE = ("available", "scheduled", "retrying", "dead")
CANCELLABLE = ("available", "scheduled", "retrying")


def retry_jobs(db: Database, job_ids: Sequence[str], *, now: float | None = None) -> int:
    """Make jobs waiting again, due now, for one more attempt; returns how many.

    Dead, cancelled, retrying and completed jobs can be retried; others are left alone.
    """
    at = time.time() if now is None else now
    marks = _in(RETRYABLE)
    changed = _each(db, job_ids, lambda conn, job_id: conn.execute(
        f"UPDATE runner_job SET state='available', run_at=?, finished_at=NULL, "
        f"max_attempts=attempt + 1, "
        f"reason='retried by hand', crashes=0 WHERE id=? AND state IN {marks}",
        (at, job_id)).rowcount)
    if changed:
        Notifier(db.path).notify()
    return changed


def discard_jobs(db: Database, job_ids: Sequence[str], *, now: float | None = None) -> int:
    """Mark waiting or dead jobs cancelled ("discarded"); returns how many."""
    return _cancel(db, job_ids, DISCARDABLE, "discarded by hand", now)


def cancel_jobs(db: Database, job_ids: Sequence[str], *, now: float | None = None) -> int:
    """Cancel jobs that have not started; returns how many."""
    return _cancel(db, job_ids, CANCELLABLE, "cancelled by hand", now)


def _cancel(db: Database, job_ids: Sequence[str], states: Sequence[str], reason: str,
            now: float | None) -> int:
    at = time.time() if now is None else now
    marks = _in(states)
    return _each(db, job_ids, lambda conn, job_id: conn.execute(
        f"UPDATE runner_job SET state='cancelled', finished_at=?, reason=? "
        f"WHERE id=? AND state IN {marks}", (at, reason, job_id)).rowcount)


def retry_job(db: Database, job_id: str) -> None:
    """Retry one job, or say why it cannot be."""
    job = get_job(db, job_id)
    if job.state not in RETRYABLE or not retry_jobs(db, [job.id]):
        raise InvalidAction(f"job {job.id} is {job.state}; only {', '.join(RETRYABLE)} jobs "
                            "can be retried")


def discard_job(db: Database, job_id: str) -> None:
    """Discard one job, or say why it cannot be."""
    job = get_job(db, job_id)
    if job.state not in DISCARDABLE or not discard_jobs(db, [job.id]):
        raise InvalidAction(f"job {job.id} is {job.state}; only {', '.join(DISCARDABLE)} jobs "
                            "can be discarded")


def cancel_job(db: Database, job_id: str) -> None:
    """Cancel one waiting job, or say why it cannot be."""
    job = get_job(db, job_id)
    if job.state not in CANCELLABLE or not cancel_jobs(db, [job.id]):
        raise InvalidAction(f"job {job.id} is {job.state}; only waiting jobs can be cancelled")


def _each(db: Database, job_ids: Sequence[str], update) -> int:  # noqa: ANN001
    if not job_ids:
        return 0
    total = 0
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start:start + 500]
        total += db.write(lambda conn, chunk=chunk: sum(update(conn, i) for i in chunk))
    return total


def _in(states: Sequence[str]) -> str:
    return "(" + ",".join(f"'{s}'" for s in states) + ")"


__all__ = ["retry_jobs", "discard_jobs", "cancel_jobs", "retry_job", "discard_job",
           "cancel_job", "JobNotFound"]
