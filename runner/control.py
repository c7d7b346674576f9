"""Write side used by the CLI and the dashboard: retry, discard, cancel.

Each action is one short ``BEGIN IMMEDIATE`` transaction that checks the state
it expects, so acting on a live worker's database is safe: a job that started
meanwhile is not touched, and the caller is told.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from runner.config import Settings
from runner.errors import InvalidAction, JobNotFound, ScheduleNotFound
from runner.store.db import Database, short_id
from runner.store.factory import store_for
from runner.store.queries import JobFilter
from runner.store.states import (
    CANCELLABLE,
    DISCARDABLE,
    FAILED,
    FAILED_OR_CANCELLED,
    RETRYABLE,
    WAITING,
    JobState,
)
from runner.store.wakeup import Notifier

#: What a bulk retry takes when the filter names no state: failed jobs only.
FAILED_STATES = FAILED_OR_CANCELLED
#: Rows changed per write transaction of a bulk action (keeps the write lock short).
BULK_CHUNK = 500


def retry_jobs(db: Database, job_ids: Sequence[str], *, now: float | None = None) -> int:
    """Make jobs waiting again, due now, for one more attempt; returns how many.

    Dead, cancelled, retrying and completed jobs can be retried; others are left alone.
    """
    changed = store_for(db).retry_jobs(job_ids, now=time.time() if now is None else now)
    if changed:
        Notifier(db.path).notify()
    return changed


def discard_jobs(db: Database, job_ids: Sequence[str], *, now: float | None = None) -> int:
    """Mark waiting or dead jobs cancelled ("discarded"); returns how many."""
    return store_for(db).discard_jobs(job_ids, now=time.time() if now is None else now)


def cancel_jobs(db: Database, job_ids: Sequence[str], *, now: float | None = None) -> int:
    """Cancel jobs that have not started; returns how many."""
    return store_for(db).cancel_jobs(job_ids, now=time.time() if now is None else now)


def retry_job(db: Database, job_id: str) -> None:
    """Retry one job, or say why it cannot be."""
    job = store_for(db).get_job(job_id)
    if job.state not in RETRYABLE or not retry_jobs(db, [job.id]):
        raise InvalidAction(f"job {job.id} is {job.state}; only {', '.join(RETRYABLE)} jobs "
                            "can be retried")


def discard_job(db: Database, job_id: str) -> None:
    """Discard one job, or say why it cannot be."""
    job = store_for(db).get_job(job_id)
    if job.state not in DISCARDABLE or not discard_jobs(db, [job.id]):
        raise InvalidAction(f"job {job.id} is {job.state}; only {', '.join(DISCARDABLE)} jobs "
                            "can be discarded")


def cancel_job(db: Database, job_id: str) -> None:
    """Cancel one waiting job, or say why it cannot be."""
    job = store_for(db).get_job(job_id)
    if job.state not in CANCELLABLE or not cancel_jobs(db, [job.id]):
        raise InvalidAction(f"job {job.id} is {job.state}; only waiting jobs can be cancelled")


# -- bulk actions on a filtered set (the dashboard's R and D) -------------------


@dataclass(frozen=True)
class BulkPlan:
    """What a bulk action will touch, counted exactly before anyone confirms it."""

    verb: str
    """``retry`` or ``discard``."""
    filters: JobFilter
    states: tuple[str, ...]
    """The states acted on: the filter's, narrowed to those the verb allows."""
    count: int
    up_to_rowid: int
    """Jobs added after the count are left alone."""


def bulk_states(verb: str, state: str | None) -> tuple[str, ...]:
    """The states a bulk ``verb`` acts on under a state filter (None: no state named).

    Retry without a named state takes failed jobs only (dead, retrying,
    cancelled): completed jobs run again only when the filter says so.
    """
    allowed = RETRYABLE if verb == "retry" else DISCARDABLE
    if state is None:
        return FAILED_STATES if verb == "retry" else DISCARDABLE
    named = {"waiting": WAITING, "failed": FAILED}.get(state, (state,))
    return tuple(JobState(s) for s in named if s in allowed)


def plan_bulk(db: Database, verb: str, filters: JobFilter) -> BulkPlan:
    """Count the jobs a bulk ``retry``/``discard`` of ``filters`` would change.

    Raises:
        InvalidAction: no job of the filter's state can be acted on that way.
    """
    if verb not in ("retry", "discard"):
        raise InvalidAction(f"unknown bulk action {verb!r}")
    states = bulk_states(verb, filters.state)
    if not states:
        allowed = RETRYABLE if verb == "retry" else DISCARDABLE
        done = "retried" if verb == "retry" else "discarded"
        raise InvalidAction(f"{filters.state} jobs cannot be {done} (only "
                            f"{', '.join(allowed)} jobs can)")
    count, top = store_for(db).count_for_bulk(filters, states)
    return BulkPlan(verb, filters, states, count, top)


def run_bulk(db: Database, plan: BulkPlan, *, now: float | None = None,
             chunk: int = BULK_CHUNK) -> int:
    """Act on the planned set, oldest job first, in short transactions; returns how many.

    A job that changed state since the count (a worker took it) is left alone,
    and so is every job added after it.
    """
    at = time.time() if now is None else now
    total = store_for(db).run_bulk(plan.verb, plan.filters, plan.states,
                                   up_to_rowid=plan.up_to_rowid, now=at, chunk=chunk)
    if total and plan.verb == "retry":
        Notifier(db.path).notify()
    return total


# -- schedules and events (the dashboard's p, t and replay keys) ---------------


def pause_schedule(db: Database, name: str, paused: bool = True, *,
                   now: float | None = None) -> None:
    """Pause a periodic schedule, or resume it from its next slot (no catch-up).

    Raises:
        ScheduleNotFound: no schedule of that name in the database.
    """
    from runner.scheduling import cron
    from runner.scheduling.definitions import parse_spec
    from runner.scheduling.scheduler import to_datetime

    store = store_for(db)
    row = store.get_schedule(name)
    if row is None:
        raise ScheduleNotFound(f"no schedule named {name!r}")
    at = time.time() if now is None else now
    if paused:
        store.set_paused(name, True, now=at)
    else:
        upcoming = cron.next_fire(parse_spec(row.expression, row.tz, row.name), to_datetime(at))
        store.set_paused(name, False, now=at, next_fire_at=upcoming.timestamp())


def run_schedule_now(db: Database, name: str, *, settings: Settings | None = None) -> str:
    """Enqueue one extra run of a schedule now; its next fire time is not touched.

    The job is built from the schedule's definition in code, so the task
    modules of ``settings`` (``[runner] imports``; default: the settings file
    found as usual) are imported first, as ``python -m runner`` does.

    Returns:
        What was done, with the new job's id.

    Raises:
        InvalidAction: the schedule is not defined in the imported modules.
        ConfigError: a task module cannot be imported.
    """
    from runner.config import load_settings
    from runner.registry import configure, import_task_modules
    from runner.scheduling.control import run_schedule_now as run_now

    chosen = (settings or load_settings()).with_database(db.path)
    configure(chosen)
    import_task_modules(chosen.runner.imports)
    try:
        job_id = run_now(name)
    except ScheduleNotFound as exc:
        raise InvalidAction(f"{exc} (give the dashboard --settings whose [runner] imports "
                            "define it)") from None
    return f"enqueued job {short_id(job_id)}"


def replay_event(db: Database, event_id: str, *, now: float | None = None) -> str:
    """Deliver a stored event again, to the handlers the workers have now.

    The event goes back to ``pending`` and its dispatch job is made due again;
    the worker that runs it fans the event out as at emit time (an unhandled
    event reaches a handler added since). Works from any process: the handler
    registry is the worker's, not the caller's.

    Raises:
        EventNotFound: no such event.
        InvalidAction: the event is being dispatched now, or its dispatch job was pruned.
    """
    event = store_for(db).get_event(event_id)
    at = time.time() if now is None else now
    job_id = event.dispatch_job or event.id

    store_for(db).redispatch_event(event.id, job_id, now=at)
    Notifier(db.path).notify()
    return f"event {short_id(event.id)} will be dispatched again"


__all__ = ["retry_jobs", "discard_jobs", "cancel_jobs", "retry_job", "discard_job",
           "cancel_job", "BulkPlan", "bulk_states", "plan_bulk", "run_bulk", "pause_schedule",
           "run_schedule_now", "replay_event", "JobNotFound"]

