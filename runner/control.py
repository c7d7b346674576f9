"""The one control API of the CLI and the dashboard: every verb either can use.

* Jobs: retry, discard, cancel one job (:func:`retry_job`, ...), many by id
  (:func:`retry_jobs`, ...), or every job of a filter (:func:`plan_bulk`, then
  :func:`run_bulk`), or every failed job of a failure group
  (:func:`plan_failure_group`, then :func:`run_failure_group`).
* Schedules: pause, resume, skip the next slot, run now
  (:mod:`runner.scheduling.control`).
* Events: replay, meaning one thing everywhere: a worker delivers the event
  again to the handlers *it* has now (:mod:`runner.events.replay`).

Each job action is one short ``BEGIN IMMEDIATE`` transaction that checks the
state it expects, so acting on a live worker's database is safe: a job that
started meanwhile is not touched, and the caller is told.
"""

from __future__ import annotations

import getpass
import os
import socket
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
    run_now,
    run_schedule_now,
    schedule_runs,
    schedule_zone,
    skip_next_run,
    upcoming_fire_times,
)
from runner.sections import QUEUE_NAME
from runner.store.backend import Store
from runner.store.rows import JobFilter
from runner.store.server_clock import ServerClock
from runner.store.states import (
    CANCELLABLE,
    DISCARDABLE,
    FAILED,
    FAILED_OR_CANCELLED,
    RETRYABLE,
    WAITING,
    JobState,
)

#: What a bulk retry takes when the filter names no state: failed jobs only.
FAILED_STATES = FAILED_OR_CANCELLED
#: Rows changed per write transaction of a bulk action (keeps the write lock short).
BULK_CHUNK = 500
#: Running jobs are cancelled as ``cancel ID`` does: their workers are asked to stop them.
BULK_VERBS = {"retry": RETRYABLE, "discard": DISCARDABLE,
              "cancel": (*CANCELLABLE, JobState.EXECUTING)}


def _server_now(store: Store, now: float | None) -> float:
    """``now``, else the server's time: a retried job is due then for every host's
    claims, and this host's clock may be off (one read of the server's clock)."""
    return ServerClock(store).now() if now is None else now


def retry_jobs(store: Store, job_ids: Sequence[str], *, now: float | None = None) -> int:
    """Make jobs waiting again, due now, for one more attempt; returns how many.

    Dead, cancelled, retrying and completed jobs can be retried; others are left alone.
    """
    changed = store.retry_jobs(job_ids, now=_server_now(store, now))
    if changed:
        store.wakeup()
    return changed


def discard_jobs(store: Store, job_ids: Sequence[str], *, now: float | None = None) -> int:
    """Mark waiting or dead jobs cancelled ("discarded"); returns how many."""
    changed = store.discard_jobs(job_ids, now=_server_now(store, now))
    if changed:
        store.made_room()  # producers blocked at a full queue may go on
    return changed


def cancel_jobs(store: Store, job_ids: Sequence[str], *, now: float | None = None,
                by: str | None = None) -> int:
    """Cancel jobs that have not started; returns how many. Their reason names ``by``
    (default: this user and host), as :func:`cancel_job`'s does."""
    changed = store.cancel_jobs(job_ids, now=_server_now(store, now), by=by or actor())
    if changed:
        store.made_room()
    return changed


def retry_job(store: Store, job_id: str) -> None:
    """Retry one job, or say why it cannot be."""
    job = store.get_job(job_id)
    if job.state not in RETRYABLE or not retry_jobs(store, [job.id]):
        raise InvalidAction(f"job {job.id} is {job.state}; only {', '.join(RETRYABLE)} jobs "
                            "can be retried")


def discard_job(store: Store, job_id: str) -> None:
    """Discard one job, or say why it cannot be."""
    job = store.get_job(job_id)
    if job.state not in DISCARDABLE or not discard_jobs(store, [job.id]):
        raise InvalidAction(f"job {job.id} is {job.state}; only {', '.join(DISCARDABLE)} jobs "
                            "can be discarded")


def cancel_job(store: Store, job_id: str, *, by: str | None = None,
               now: float | None = None) -> JobState:
    """Cancel one job that is waiting or running, or say why it cannot be.

    A waiting job is cancelled at once. A running one is stopped by its worker
    within a moment (an ``async def`` job at its current ``await``; a plain
    function at its next look at ``current_job().cancelled``, or by an
    interruption a second later) and ends ``cancelled``. The reason names
    ``by`` (default: this user and host). Returns the state the job was in.

    Raises:
        JobNotFound: no such job.
        InvalidAction: the job has finished already.
    """
    job = store.get_job(job_id)
    state = store.request_cancel(job.id, by=by or actor(), now=time.time() if now is None
                                 else now)
    if state is None or (state not in CANCELLABLE and state is not JobState.EXECUTING):
        raise InvalidAction(f"job {job.id} is {state or 'gone'}; only waiting or running jobs "
                            "can be cancelled")
    if state is JobState.EXECUTING:
        store.wakeup()
    else:
        store.made_room()
    return state


def cancel(job_id: str, *, by: str | None = None, store: Store | None = None) -> JobState:
    """Cancel a waiting or running job of the runner's database; see :func:`cancel_job`."""
    return cancel_job(store if store is not None else _runner_store(), job_id, by=by)


def actor(via: str = "") -> str:
    """Who acts from this process: ``user@host``, with what (``cli``, ``dashboard``)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}" + (f" ({via})" if via else "")


# -- pause and resume queues and tasks ----------------------------------------------


def pause_queue(name: str, *, by: str | None = None, store: Store | None = None,
                now: float | None = None) -> bool:
    """Stop workers from claiming a queue's jobs: waiting jobs stay, running ones finish.

    Kept in the database (every worker, across restarts) until :func:`resume_queue`.
    Returns False when it was paused already. ``store`` defaults to the runner's.
    """
    return _set_pause("queue", name, True, by, store, now)


def resume_queue(name: str, *, by: str | None = None, store: Store | None = None,
                 now: float | None = None) -> bool:
    """Let workers claim a paused queue's jobs again; False when it was not paused."""
    return _set_pause("queue", name, False, by, store, now)


def pause_task(name: str, *, by: str | None = None, store: Store | None = None,
               now: float | None = None) -> bool:
    """Stop workers from claiming a task's jobs, in every queue; see :func:`pause_queue`."""
    return _set_pause("task", name, True, by, store, now)


def resume_task(name: str, *, by: str | None = None, store: Store | None = None,
                now: float | None = None) -> bool:
    """Let workers claim a paused task's jobs again; False when it was not paused."""
    return _set_pause("task", name, False, by, store, now)


def _set_pause(kind: str, name: str, paused: bool, by: str | None, store: Store | None,
               now: float | None) -> bool:
    if not QUEUE_NAME.match(name) and kind == "queue":
        raise InvalidAction(f"{name!r} is not a valid queue name")
    if not name:
        raise InvalidAction(f"a {kind} name is needed")
    target = store if store is not None else _runner_store()
    was = {(p.kind, p.name): p.paused for p in target.list_pauses()}
    target.set_pause(kind, name, paused, now=time.time() if now is None else now,
                     by=by or actor())
    if not paused:
        target.wakeup()
    return was.get((kind, name), False) != paused


def _runner_store() -> Store:
    from runner.registry import get_huey

    jobs = get_huey().jobs
    if jobs is None:
        raise InvalidAction("the runner is in immediate mode: there is no database to act on")
    return jobs.store


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
    running: tuple[str, ...] = ()
    """A cancel's running jobs of the count, by id: their workers are asked to stop them
    (jobs started after the count are left alone)."""

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
    named = {"waiting": WAITING, "failed": FAILED}.get(state, (state,))
    return tuple(JobState(s) for s in named if s in allowed)


def plan_bulk(store: Store, verb: str, filters: JobFilter) -> BulkPlan:
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
    waiting = tuple(s for s in states if s is not JobState.EXECUTING)
    count, top = store.count_for_bulk(filters, waiting) if waiting else (0, 0)
    running: tuple[str, ...] = ()
    if len(waiting) < len(states):  # running jobs are few: one worker thread each
        running = tuple(store.job_ids(replace(filters, state=JobState.EXECUTING.value)))
    return BulkPlan(verb, filters, states, count + len(running), top, running)


def run_bulk(store: Store, plan: BulkPlan, *, now: float | None = None,
             chunk: int = BULK_CHUNK, by: str | None = None) -> int:
    """Act on the planned set, oldest job first, in short transactions; returns how many.

    A job that changed state since the count (a worker took it) is left alone,
    and so is every job added after it. A cancel names ``by`` (default: this user and
    host) in the reason of each job, and asks the workers of the running jobs
    counted to stop them (:func:`cancel_job`), and counts
    those still running, or waiting again, when asked.
    """
    at = _server_now(store, now)
    waiting = tuple(s for s in plan.states if s is not JobState.EXECUTING)
    asker = by or actor()
    total = store.run_bulk(plan.verb, plan.filters, waiting, up_to_rowid=plan.up_to_rowid,
                           now=at, chunk=chunk, by=asker) if waiting else 0
    asked = 0
    for job_id in plan.running:
        state = store.request_cancel(job_id, by=asker, now=at)
        if state is JobState.EXECUTING:
            asked += 1
        elif state in CANCELLABLE:  # handed back meanwhile: cancelled as it waited
            total += 1
    if asked:
        store.wakeup()
    return _changed_in_bulk(store, plan.verb, total) + asked


def _changed_in_bulk(store: Store, verb: str, total: int) -> int:
    """After a bulk change: workers look again (jobs retried), or limits and bounds have
    room (jobs discarded or cancelled). Returns ``total``."""
    if total and verb == "retry":
        store.wakeup()
    elif total:
        store.made_room()
    return total


# -- a failure group (the dashboard's Failures r and d) ----------------------------------

#: The verbs a failure group action takes; both act on every retrying and dead job.
GROUP_VERBS = ("retry", "discard")


@dataclass(frozen=True)
class FailureGroupPlan:
    """Every retrying and dead job of an error type and messages, counted before anyone
    confirms: the set a failure group action changes."""

    verb: str
    """``retry`` or ``discard``."""
    error_type: str | None
    messages: tuple[str | None, ...]
    count: int
    up_to_rowid: int
    """Jobs added after the count are left alone."""
    failed_until: float | None
    """The latest failure counted: a job failing after the count is left alone."""


def plan_failure_group(store: Store, verb: str, error_type: str | None,
                       messages: Sequence[str | None]) -> FailureGroupPlan:
    """Count every retrying and dead job with ``error_type`` and one of ``messages``
    (not only the newest ones the Failures screen groups).

    Raises:
        InvalidAction: an unknown verb.
    """
    if verb not in GROUP_VERBS:
        raise InvalidAction(f"unknown group action {verb!r} (one of {', '.join(GROUP_VERBS)})")
    chosen = tuple(dict.fromkeys(messages))
    count, top, last = store.count_failure_group(error_type, chosen)
    return FailureGroupPlan(verb, error_type, chosen, count, top, last)


def run_failure_group(store: Store, plan: FailureGroupPlan, *, now: float | None = None,
                      chunk: int = BULK_CHUNK) -> int:
    """Act on the planned group in short transactions of ``chunk`` jobs; returns how many.

    A job that changed state since the count (a worker took it, it was retried) is
    left alone, and so is every job added or failing after the count.
    """
    if not plan.count:
        return 0
    at = _server_now(store, now)
    total = store.run_failure_group(plan.verb, plan.error_type, plan.messages,
                                    up_to_rowid=plan.up_to_rowid,
                                    failed_until=plan.failed_until, now=at, chunk=chunk)
    return _changed_in_bulk(store, plan.verb, total)


__all__ = [
    # jobs
    "retry_jobs", "discard_jobs", "cancel_jobs", "retry_job", "discard_job", "cancel_job",
    "actor", "cancel",
    # queues and tasks
    "pause_queue", "resume_queue", "pause_task", "resume_task",
    "BulkPlan", "bulk_states", "plan_bulk", "run_bulk", "JobNotFound",
    "FailureGroupPlan", "plan_failure_group", "run_failure_group",
    # schedules
    "list_schedules", "get_schedule", "schedule_runs", "pause_schedule", "resume_schedule",
    "skip_next_run", "run_schedule_now", "run_now", "schedule_zone",
    "upcoming_fire_times",
    # events
    "replay", "replay_events", "replay_matching", "ReplayRequest",
]
