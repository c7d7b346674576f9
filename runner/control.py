"""The one control API of the CLI and the dashboard: every verb either can use.

* Jobs: retry, discard, cancel one job (:func:`retry_job`, ...), many by id
  (:func:`retry_jobs`, ...), or every job of a filter (:func:`plan_bulk`, then
  :func:`run_bulk`).
* Schedules: pause, resume, skip the next slot, run now
  (:mod:`runner.scheduling.control`).
* Events: replay, meaning one thing everywhere: a worker delivers the event
  again to the handlers *it* has now (:mod:`runner.events.replay`).

Each job action is one short ``BEGIN IMMEDIATE`` transaction that checks the
state it expects, so acting on a live worker's database is safe: a job that
started meanwhile is not touched, and the caller is told.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from runner.errors import InvalidAction, JobNotFound
from runner.events.replay import ReplayRequest, replay, replay_events, replay_matching
from runner.scheduling.control import (
    get_schedule,
    list_schedules,
    pause_schedule,
    resume_schedule,
    run_schedule_now,
    schedule_runs,
    skip_next_run,
    upcoming_fire_times,
)
from runner.store.counters import count_where
from runner.store.db import Database
from runner.store.models import WAITING
from runner.store.queries import JobFilter, get_job
from runner.store.wakeup import Notifier

RETRYABLE = ("dead", "cancelled", "retrying", "completed")
DISCARDABLE = ("available", "scheduled", "retrying", "dead")
CANCELLABLE = ("available", "scheduled", "retrying")
#: What a bulk retry takes when the filter names no state: failed jobs only.
FAILED_STATES = ("dead", "retrying", "cancelled")
#: Rows changed per write transaction of a bulk action (keeps the write lock short).
BULK_CHUNK = 500
BULK_VERBS = {"retry": RETRYABLE, "discard": DISCARDABLE, "cancel": CANCELLABLE}


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

    def cancel(conn: sqlite3.Connection, job_id: str) -> int:
        count_where(conn, "cancelled", f"id=? AND state IN {marks}", (job_id,))
        return conn.execute(f"UPDATE runner_job SET state='cancelled', finished_at=?, reason=? "
                            f"WHERE id=? AND state IN {marks}", (at, reason, job_id)).rowcount

    return _each(db, job_ids, cancel)


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


# -- bulk actions on a filtered set (the dashboard's R and D, the CLI's --state ...) -


@dataclass(frozen=True)
class BulkPlan:
    """What a bulk action will touch, counted exactly before anyone confirms it."""

    verb: str
    """``retry``, ``discard`` or ``cancel``."""
    filters: JobFilter
    states: tuple[str, ...]
    """The states acted on: the filter's, narrowed to those the verb allows."""
    count: int
    up_to_rowid: int
    """Jobs added after the count are left alone."""

    @property
    def unfiltered(self) -> bool:
        """No filter at all: every job of the allowed states (front ends ask for more)."""
        return self.filters == JobFilter()


def bulk_states(verb: str, state: str | None) -> tuple[str, ...]:
    """The states a bulk ``verb`` acts on under a state filter (None: no state named).

    Retry without a named state takes failed jobs only (dead, retrying,
    cancelled): completed jobs run again only when the filter says so.
    """
    allowed = BULK_VERBS[verb]
    if state is None:
        return FAILED_STATES if verb == "retry" else allowed
    named = {"waiting": tuple(str(s) for s in WAITING),
             "failed": ("retrying", "dead")}.get(state, (state,))
    return tuple(s for s in named if s in allowed)


def plan_bulk(db: Database, verb: str, filters: JobFilter) -> BulkPlan:
    """Count the jobs a bulk ``retry``/``discard``/``cancel`` of ``filters`` would change.

    Raises:
        InvalidAction: an unknown verb, or no job of the filter's state can be
            acted on that way.
    """
    if verb not in BULK_VERBS:
        raise InvalidAction(f"unknown bulk action {verb!r} (one of {', '.join(BULK_VERBS)})")
    states = bulk_states(verb, filters.state)
    if not states:
        done = {"retry": "retried", "discard": "discarded", "cancel": "cancelled"}[verb]
        raise InvalidAction(f"{filters.state} jobs cannot be {done} (only "
                            f"{', '.join(BULK_VERBS[verb])} jobs can)")
    where, params = _bulk_where(filters, states)
    count, top = db.query(f"SELECT count(*), max(rowid) FROM runner_job{where}", params)[0]
    return BulkPlan(verb, filters, states, count, top or 0)


def run_bulk(db: Database, plan: BulkPlan, *, now: float | None = None,
             chunk: int = BULK_CHUNK) -> int:
    """Act on the planned set, oldest job first, in short transactions; returns how many.

    A job that changed state since the count (a worker took it) is left alone,
    and so is every job added after it.
    """
    at = time.time() if now is None else now
    where, params = _bulk_where(plan.filters, plan.states)
    pick = (f"SELECT rowid FROM runner_job{where} AND rowid > ? AND rowid <= ? "
            f"ORDER BY rowid LIMIT {int(chunk)}")
    if plan.verb == "retry":
        change = ("state='available', run_at=?, finished_at=NULL, max_attempts=attempt + 1, "
                  "reason='retried by hand', crashes=0")
    else:
        reason = "discarded by hand" if plan.verb == "discard" else "cancelled by hand"
        change = f"state='cancelled', finished_at=?, reason='{reason}'"
    update = f"UPDATE runner_job SET {change} WHERE rowid IN ({pick}) RETURNING rowid"
    total, last = 0, 0

    def act(conn: sqlite3.Connection, last: int) -> list[tuple]:
        chosen = (*params, last, plan.up_to_rowid)
        if plan.verb != "retry":  # the same rows the update picks, in this transaction
            count_where(conn, "cancelled", f"rowid IN ({pick})", chosen)
        return conn.execute(update, (at, *chosen)).fetchall()

    while True:
        rows = db.write(lambda conn, last=last: act(conn, last))
        if not rows:
            break
        total += len(rows)
        last = max(r[0] for r in rows)
    if total and plan.verb == "retry":
        Notifier(db.path).notify()
    return total


def _bulk_where(filters: JobFilter, states: tuple[str, ...]) -> tuple[str, list[object]]:
    where, params = replace(filters, state=None).where()
    joined = f"state IN {_in(states)}"
    return (f"{where} AND {joined}" if where else f" WHERE {joined}"), params


__all__ = [
    # jobs
    "retry_jobs", "discard_jobs", "cancel_jobs", "retry_job", "discard_job", "cancel_job",
    "BulkPlan", "bulk_states", "plan_bulk", "run_bulk", "JobNotFound",
    # schedules
    "list_schedules", "get_schedule", "schedule_runs", "pause_schedule", "resume_schedule",
    "skip_next_run", "run_schedule_now", "upcoming_fire_times",
    # events
    "replay", "replay_events", "replay_matching", "ReplayRequest",
]
