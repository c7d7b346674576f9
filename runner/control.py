"""Write side used by the CLI and the dashboard: retry, discard, cancel.

Each action is one short ``BEGIN IMMEDIATE`` transaction that checks the state
it expects, so acting on a live worker's database is safe: a job that started
meanwhile is not touched, and the caller is told.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from runner.config import Settings
from runner.errors import InvalidAction, JobNotFound, ScheduleNotFound
from runner.store.counters import count_where
from runner.store.db import Database, short_id
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
    named = {"waiting": tuple(str(s) for s in WAITING),
             "failed": ("retrying", "dead")}.get(state, (state,))
    return tuple(s for s in named if s in allowed)


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
        change = "state='cancelled', finished_at=?, reason='discarded by hand'"
    update = f"UPDATE runner_job SET {change} WHERE rowid IN ({pick}) RETURNING rowid"
    total, last = 0, 0
    while True:
        rows = db.write(lambda conn, last=last: conn.execute(
            update, (at, *params, last, plan.up_to_rowid)).fetchall())
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
    from runner.store import schedules as store

    row = store.get_schedule(db, name)
    if row is None:
        raise ScheduleNotFound(f"no schedule named {name!r}")
    at = time.time() if now is None else now
    if paused:
        store.set_paused(db, name, True, now=at)
    else:
        upcoming = cron.next_fire(parse_spec(row.expression, row.tz, row.name), to_datetime(at))
        store.set_paused(db, name, False, now=at, next_fire_at=upcoming.timestamp())


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
    from runner.store.events import get_event

    event = get_event(db, event_id)
    at = time.time() if now is None else now
    job_id = event.dispatch_job or event.id

    def write(conn: sqlite3.Connection) -> str:
        row = conn.execute("SELECT state FROM runner_job WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise InvalidAction(f"event {event.id}: its dispatch job is gone (pruned); replay "
                                "it with `python -m runner events replay`")
        if row[0] not in RETRYABLE or row[0] == "retrying":
            raise InvalidAction(f"event {event.id} is being dispatched now ({row[0]})")
        conn.execute("UPDATE runner_event SET status = 'pending' WHERE id = ?", (event.id,))
        conn.execute(
            "UPDATE runner_job SET state='available', run_at=?, finished_at=NULL, "
            "max_attempts=attempt + 1, reason='event replayed by hand', crashes=0 WHERE id=?",
            (at, job_id))
        return f"event {short_id(event.id)} will be dispatched again"

    result = db.write(write)
    Notifier(db.path).notify()
    return result


__all__ = ["retry_jobs", "discard_jobs", "cancel_jobs", "retry_job", "discard_job",
           "cancel_job", "BulkPlan", "bulk_states", "plan_bulk", "run_bulk", "pause_schedule",
           "run_schedule_now", "replay_event", "JobNotFound"]

