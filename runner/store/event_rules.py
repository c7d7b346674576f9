"""What event writes and reads decide around each backend's own statements.

The SQL backends (``sqlite/events.py``, ``postgres/events.py``) run their
statements and hand the rows here: which events of a write are new and which
repeat a recent key, which dispatch job each event joins, how a fan-out marks
each event, how the newest-first listing pages through the log, and which of a
handler's jobs decides its outcome. Nothing here knows SQL or a driver.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from runner.errors import EventNotFound
from runner.event_patterns import matches
from runner.store.event_rows import (
    OUTCOME_OF_STATE,
    EventRow,
    EventStatus,
    HandlerOutcome,
    NewEvent,
)
from runner.store.job_rows import NewJob
from runner.store.rows import found_row
from runner.store.states import JobState

#: Events read per statement of :func:`newest_events`.
PAGE = 1000


def new_events(events: Sequence[NewEvent], recent_key: Callable[[str], str | None]
               ) -> tuple[list[str], list[NewEvent]]:
    """The id each event of a write ends up with, and the events to write.

    An event whose key was used by an earlier event of this write, or within the
    dedupe window (``recent_key`` answers the stored event's id), is not written:
    its slot holds the earlier event's id.
    """
    ids: list[str] = []
    seen: dict[str, str] = {}
    rows: list[NewEvent] = []
    for event in events:
        if event.key is not None:
            earlier = seen.get(event.key) or recent_key(event.key)
            if earlier is not None:
                ids.append(earlier)
                continue
            seen[event.key] = event.id
        ids.append(event.id)
        rows.append(event)
    return ids, rows


def dispatch_owners(dispatch: Sequence[tuple[NewJob, Sequence[str]]], written: set[str],
                    waiting: str | None, now: float) -> tuple[list[NewJob], dict[str, str]]:
    """The dispatch jobs to write, and the dispatch job of each written event.

    ``dispatch`` pairs each dispatch job with the event ids it dispatches; a job
    none of whose events was written is not written either. A due dispatch job no
    worker has claimed yet (``waiting``) sweeps up every due pending event when it
    runs: a due job's events join it instead.
    """
    jobs: list[NewJob] = []
    owner: dict[str, str] = {}
    for job, covered in dispatch:
        if not any(i in written for i in covered):
            continue
        shared = waiting if job.run_at <= now else None
        if shared is None:
            jobs.append(job)
        owner.update({i: shared or job.id for i in covered})
    return jobs, owner


def mark_dispatched(event_ids: Iterable[str], deliveries: Mapping[str, Sequence[NewJob]],
                    mark: Callable[[str, str, int], bool]) -> tuple[dict[str, int], list[NewJob]]:
    """A fan-out's marks: each event ``dispatched`` (``unhandled`` with no jobs) by
    ``mark(event_id, status, handlers)``, a compare-and-set from ``pending`` that
    answers whether it changed the row.

    Returns the handler jobs written per event this call dispatched, and those jobs.
    """
    done: dict[str, int] = {}
    jobs: list[NewJob] = []
    for event_id in event_ids:
        handler_jobs = deliveries[event_id]
        status = EventStatus.DISPATCHED if handler_jobs else EventStatus.UNHANDLED
        if mark(event_id, status, len(handler_jobs)):
            done[event_id] = len(handler_jobs)
            jobs.extend(handler_jobs)
    return done, jobs


def replay_jobs(jobs: Sequence[NewJob], written: Collection[str], newest: Mapping[str, str],
                only_dead: bool) -> list[NewJob]:
    """The jobs of a replay to write, from what the backend read in the write's transaction.

    Not a job whose id is in ``written`` (the same replay ran before, its worker died
    after the commit); with ``only_dead``, not one whose handler's newest job of the
    event (``newest``: handler → state) is not dead: another replay delivered to it.
    """
    return [j for j in jobs if j.id not in written
            and (not only_dead or newest.get(j.task) == JobState.DEAD)]


def found_event(lookup: Callable[[], tuple | None], event_id: str) -> EventRow:
    """The event ``lookup`` finds by id or a unique start or end of it.

    Raises:
        EventNotFound: no event, or the prefix is ambiguous.
    """
    return EventRow(*found_row(lookup, event_id, "event", EventNotFound))


def newest_events(page: Callable[[float], list[tuple]], pattern: str | None,
                  limit: int) -> list[EventRow]:
    """Up to ``limit`` events newest first whose name matches ``pattern``.

    ``page(before)`` reads the next :data:`PAGE` events emitted before ``before``,
    newest first, narrowed in SQL by the pattern's literal head; the wildcards
    are matched here.
    """
    found: list[EventRow] = []
    before = float("inf")
    while len(found) < limit:
        rows = page(before)
        found += [e for e in (EventRow(*r) for r in rows)
                  if pattern is None or matches(pattern, e.name)]
        if len(rows) < PAGE:
            break
        before = rows[-1][4]
    return found[:limit]


def outcomes_of(event_ids: Sequence[str], rows: Iterable[tuple]
                     ) -> dict[str, list[HandlerOutcome]]:
    """Per event, each handler's outcome, by handler name, from the linked jobs'
    ``(event_id, task, state, id, attempt, jobs of the handler, rank by newest)``."""
    result: dict[str, list[HandlerOutcome]] = {i: [] for i in event_ids}
    for event_id, task, state, job_id, attempt, count, newest in rows:
        if newest == 1:
            result[event_id].append(HandlerOutcome(
                task, OUTCOME_OF_STATE.get(state, state), job_id, count, attempt))
    for outcomes in result.values():
        outcomes.sort(key=lambda o: o.handler)
    return result

