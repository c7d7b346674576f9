"""Replay: deliver stored events again, through a worker, to the handlers it has now.

Replaying an event enqueues one job of the built-in task ``runner.events.replay``.
The worker that runs it looks each event up in *its own* handler registry,
as the dispatch job does at emit time, and writes one new handler job per
matching handler, linked to the event. So the caller needs no task modules
(the dashboard, ``python -m runner events replay`` and a script all mean the
same thing), and a handler deployed since the event was emitted receives it.

Options narrow the handlers: ``handler`` (one by name) and ``only_failed``
(those whose newest delivery of the event is dead). The replay job is
idempotent: if its worker dies after writing, the rerun writes nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from runner.config import Settings
from runner.errors import EventNotFound, Fatal, InvalidAction, SerializationError, UnknownTask
from runner.event_patterns import check_pattern
from runner.events.delivery import DISPATCH_BATCH, handler_job, handlers, handlers_for
from runner.events.settings import event_settings
from runner.ids import derived_id
from runner.registry import get_huey, runner_for, task
from runner.runner_huey import RunnerHuey, current_job
from runner.store.backend import Store
from runner.store.event_rows import EventStatus
from runner.store.job_storage import JobStorage
from runner.store.rows import short_id
from runner.store.states import JobState

logger = logging.getLogger(__name__)

#: Name of the built-in task that replays events in a worker.
REPLAY_TASK = "runner.events.replay"
#: Most events one replay job carries.
REPLAY_BATCH = DISPATCH_BATCH


@dataclass(frozen=True)
class ReplayRequest:
    """What a replay enqueued: the replay jobs and the events they carry."""

    jobs: tuple[str, ...]
    events: tuple[str, ...]
    nothing_failed: tuple[str, ...] = ()
    """With ``only_failed``, the matching events left out: no handler's newest delivery
    of them is dead (of ``handler``'s, when given), so there is nothing to redeliver."""


def replay(event_id: str, handler: str | None = None, *, only_failed: bool = False,
           huey: RunnerHuey | None = None, store: Store | None = None,
           settings: Settings | None = None) -> str:
    """Deliver a stored event again, through a worker; returns the replay job's id.

    The worker that runs the replay job writes one new job per handler of
    *its* registry that matches the event (narrowed by ``handler`` and
    ``only_failed``), linked to the event like the first delivery.

    Args:
        event_id: the event (or a unique start or end of its id).
        handler: only this handler (by name).
        only_failed: only handlers whose newest delivery of this event is dead.
        huey: the runner to enqueue on (default: the process-wide one).
        store: the jobs store (default: the runner's); the runner is pointed at it.
        settings: settings to point the process-wide runner at first (the dashboard's).

    Raises:
        EventNotFound: no such event.
        InvalidAction: the event has not been dispatched yet (it will be, once).
    """
    runner = _runner(huey, store, settings)
    # Enqueued even when no handler failed (its id is the contract): the worker then
    # writes nothing. replay_events() is the form that asks first and says so.
    return _enqueue(runner, _dispatched(_jobs(runner), [event_id]), handler,
                    only_failed).jobs[0]


def replay_matching(pattern: str | None = None, *, since: float | None = None,
                    handler: str | None = None, only_failed: bool = False,
                    limit: int = 10_000, huey: RunnerHuey | None = None,
                    store: Store | None = None,
                    settings: Settings | None = None) -> ReplayRequest:
    """Replay every dispatched event matching ``pattern`` emitted at or after ``since``.

    Events still pending are left to their own dispatch, and with ``only_failed``
    events without a failed handler (``nothing_failed``). Returns the replay jobs
    enqueued (none when no event is left) and the events they carry.

    Raises:
        SerializationError: ``pattern`` is not a valid pattern (as ``@event_handler``
            says it); nothing was enqueued.
    """
    if pattern is not None:
        check_pattern(pattern, error=SerializationError)
    runner = _runner(huey, store, settings)
    jobs = _jobs(runner)
    found = [e.id for e in jobs.store.list_events(pattern=pattern, since=since, limit=limit)
             if e.status != EventStatus.PENDING]
    if only_failed:
        return _enqueue_failed(runner, jobs, found, handler)
    return _enqueue(runner, found, handler, only_failed)


def replay_events(event_ids: Sequence[str], handler: str | None = None, *,
                  only_failed: bool = False, huey: RunnerHuey | None = None,
                  store: Store | None = None,
                  settings: Settings | None = None) -> ReplayRequest:
    """Replay the given events (ids or unique parts of them); see :func:`replay`.

    With ``only_failed``, as :func:`replay_matching`: events without a failed handler
    are left out (``nothing_failed``), and when none is left nothing is enqueued.

    Raises:
        EventNotFound: no such event.
        InvalidAction: an event has not been dispatched yet (it will be, once).
    """
    runner = _runner(huey, store, settings)
    jobs = _jobs(runner)
    found = _dispatched(jobs, event_ids)
    if only_failed:
        return _enqueue_failed(runner, jobs, found, handler)
    return _enqueue(runner, found, handler, only_failed)


def _dispatched(jobs: JobStorage, event_ids: Sequence[str]) -> list[str]:
    """The full ids of the events, refused while one is still pending."""
    events = [jobs.store.get_event(event_id) for event_id in event_ids]
    for event in events:
        if event.status == EventStatus.PENDING:
            raise InvalidAction(f"event {short_id(event.id)} has not been dispatched yet; its "
                                "dispatch job delivers it to every handler (nothing to replay)")
    return [e.id for e in events]


def _enqueue_failed(runner: RunnerHuey, jobs: JobStorage, event_ids: list[str],
                    handler: str | None) -> ReplayRequest:
    """Replay the failed handlers of the events that have one; name the others apart.

    This read only spares a replay job that would write nothing: the worker's
    ``add_deliveries(only_dead=True)`` checks again as it writes, so two replays
    asked for at once still deliver to a failed handler once.
    """
    outcomes = jobs.store.handler_outcomes(event_ids) if event_ids else {}
    failed = {i for i in event_ids if any(o.outcome == JobState.DEAD
                                          and (handler is None or o.handler == handler)
                                          for o in outcomes.get(i, []))}
    nothing_failed = tuple(i for i in event_ids if i not in failed)
    found = [i for i in event_ids if i in failed]
    if not found:
        return ReplayRequest((), (), nothing_failed)
    return replace(_enqueue(runner, found, handler, True), nothing_failed=nothing_failed)


def _enqueue(runner: RunnerHuey, event_ids: list[str], handler: str | None,
             only_failed: bool) -> ReplayRequest:
    settings = event_settings(runner.settings)
    ids = []
    for start in range(0, len(event_ids), REPLAY_BATCH):
        job = replay_task.s(event_ids[start:start + REPLAY_BATCH], handler, only_failed)
        # Served wherever dispatch jobs are: a worker that fans events out replays them.
        job.queue = settings.dispatch_queue
        job.priority = settings.dispatch_priority
        ids.append(runner.enqueue(job).id)
    return ReplayRequest(tuple(ids), tuple(event_ids))


def _runner(huey: RunnerHuey | None, store: Store | None,
            settings: Settings | None) -> RunnerHuey:
    return runner_for(settings, None if store is None else store.address, huey=huey)


def _jobs(runner: RunnerHuey) -> JobStorage:
    jobs = runner.jobs
    if jobs is None:
        raise UnknownTask("replay needs the jobs database (not available in immediate mode)")
    return jobs


# -- in the worker: the replay job --------------------------------------------------


def _replay(event_ids: list[str], handler: str | None, only_failed: bool) -> None:
    """Write new handler jobs for each event, from this worker's handler registry."""
    huey = get_huey()
    jobs = huey.jobs
    if jobs is None:
        return
    job = current_job()
    replay_id = job.id if job is not None else ""
    outcomes = jobs.store.handler_outcomes(event_ids) if only_failed else {}
    unknown = []
    written = 0
    # A handler this worker has but whose pattern does not match an event (a replay of
    # `user.*` to the handler of `user.signup`) is narrowing, not a missing deployment.
    known = handler is not None and any(h.name == handler for h in handlers())
    for event_id in event_ids:
        try:
            event = jobs.store.get_event(event_id)
        except EventNotFound:  # pruned since the request: nothing to deliver
            logger.warning("replay: event %s is gone (pruned); skipped", event_id)
            continue
        targets = handlers_for(event.name)
        if handler is not None:
            targets = [h for h in targets if h.name == handler]
            if not targets and not known:
                unknown.append(event.name)
                continue
        if only_failed:
            dead = {o.handler for o in outcomes.get(event.id, []) if o.outcome == JobState.DEAD}
            targets = [h for h in targets if h.name in dead]
        if not targets:
            logger.info("replay: event %s (%s) has no %shandler%s in this worker; nothing "
                        "delivered", event.id, event.name, "failed " if only_failed else "",
                        f" {handler!r} subscribed to it" if handler is not None else "")
            continue
        payload = event.payload
        # Ids derived from this replay job: a rerun after a crash writes nothing twice.
        new = [handler_job(huey, h, event.id, payload,
                           job_id=derived_id(replay_id, event.id, h.name) if replay_id else None)
               for h in targets]
        # The store checks "newest delivery dead" again as it writes: another replay of
        # this event may have delivered to the handler since the outcomes were read.
        count = jobs.store.add_deliveries(event.id, jobs.clock.jobs(new), now=jobs.clock.now(),
                                          only_dead=only_failed)
        if only_failed and count < len(new):
            logger.info("replay: event %s (%s): %d failed handler(s) already delivered to "
                        "again by a replay; not delivered twice", event.id, event.name,
                        len(new) - count)
        written += count
    if written:
        jobs.wake()
    if unknown:
        raise Fatal(f"no handler '{handler}' in this worker for event(s) named "
                    f"{', '.join(sorted(set(unknown)))}; deploy it, then replay again")


replay_task = task(name=REPLAY_TASK, retry_limit=3, retry_delay=1.0, timeout=300)(_replay)
