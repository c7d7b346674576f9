"""Replay: deliver stored events again, as new handler jobs linked to the original event.

The handlers are those of the calling process (a script or ``python -m runner
events replay``, which imports the configured task modules), matched against
the event's name as at dispatch.
"""

from __future__ import annotations

from runner.errors import UnknownTask
from runner.events.delivery import handler_job, handlers_for
from runner.registry import get_huey
from runner.store import events as store


def replay(event_id: str, handler: str | None = None, *, only_failed: bool = False) -> list[str]:
    """Deliver a stored event again, as new jobs linked to it; returns the job ids.

    Args:
        event_id: the event (or a unique prefix of its id).
        handler: only this handler (by name); default every handler of this
            process whose pattern matches the event.
        only_failed: only handlers whose newest delivery of this event is dead.

    Raises:
        EventNotFound: no such event.
        UnknownTask: ``handler`` is not registered here or does not match the event.
    """
    huey = get_huey()
    jobs = huey.jobs
    if jobs is None:
        raise UnknownTask("replay needs the jobs database (not available in immediate mode)")
    event = store.get_event(jobs.db, event_id)
    targets = handlers_for(event.name)
    if handler is not None:
        targets = [h for h in targets if h.name == handler]
        if not targets:
            known = ", ".join(h.name for h in handlers_for(event.name)) or "none"
            raise UnknownTask(f"no handler '{handler}' for event '{event.name}' in this "
                              f"process (matching handlers: {known})")
    if only_failed:
        dead = {o.handler for o in store.handler_outcomes(jobs.db, [event.id])[event.id]
                if o.outcome == "dead"}
        targets = [h for h in targets if h.name in dead]
    if not targets:
        return []
    payload = event.payload
    new = [handler_job(huey, h, event.id, payload) for h in targets]
    store.add_deliveries(jobs.db, event.id, new)
    jobs.wake()
    return [j.id for j in new]


def replay_matching(pattern: str | None = None, *, since: float | None = None,
                    handler: str | None = None, only_failed: bool = False,
                    limit: int = 10_000) -> dict[str, list[str]]:
    """Replay every stored event matching ``pattern`` emitted at or after ``since``.

    Returns:
        event id → new job ids, for the events that got at least one job.
    """
    huey = get_huey()
    jobs = huey.jobs
    if jobs is None:
        raise UnknownTask("replay needs the jobs database (not available in immediate mode)")
    result: dict[str, list[str]] = {}
    for event in store.list_events(jobs.db, pattern=pattern, since=since, limit=limit):
        if handler is not None and handler not in {h.name for h in handlers_for(event.name)}:
            continue
        ids = replay(event.id, handler, only_failed=only_failed)
        if ids:
            result[event.id] = ids
    return result
