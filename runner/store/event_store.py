"""Events in the storage seam: inserted with their dispatch, fanned out once, replayed.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from runner.store.event_rows import EventRow, HandlerOutcome, NewEvent
from runner.store.job_rows import NewJob


class EventsStore(Protocol):
    """Events, their dispatch and the handlers' outcomes."""

    def insert_events(self, events: Sequence[NewEvent],
                      dispatch: Sequence[tuple[NewJob, Sequence[str]]], *, now: float,
                      dedupe_window: float, deadline: float) -> list[str]:
        """Write events and their dispatch jobs in one transaction; returns the event ids."""
        ...

    def pending_events(self, ids: Sequence[str]) -> list[EventRow]:
        """The events among ``ids`` that are still waiting for their dispatch."""
        ...

    def due_pending_events(self, *, now: float, limit: int) -> list[EventRow]:
        """The oldest undispatched events whose dispatch job is due (not delayed)."""
        ...

    def fan_out(self, deliveries: Mapping[str, Sequence[NewJob]], *, settle: Sequence[str] = (),
                now: float | None = None) -> dict[str, int]:
        """Dispatch pending events: insert their handler jobs and mark them, in one transaction."""
        ...

    def add_deliveries(self, event_id: str, jobs: Sequence[NewJob], *,
                       now: float | None = None, only_dead: bool = False) -> int:
        """Replay: insert new handler jobs linked to an event, counting the delivery.

        A job whose id exists already is not written (the same replay ran before and
        must not deliver twice); with ``only_dead``, nor is one whose handler's newest
        job of the event is not dead. The check and the insert are one atomic step:
        replays running at once deliver to a failed handler once. Returns how many
        jobs were written (the event counts one more delivery when any was).
        """
        ...

    def get_event(self, event_id: str) -> EventRow:
        """One event by id, or by a unique start or end of its id."""
        ...

    def event_of_job(self, job_id: str) -> EventRow | None:
        """The event a job was created for, or None."""
        ...

    def list_events(self, *, pattern: str | None = None, since: float | None = None,
                    status: str | None = None, limit: int = 100) -> list[EventRow]:
        """Events newest first, filtered by name pattern, emit time and status."""
        ...

    def handler_outcomes(self, event_ids: Sequence[str]) -> dict[str, list[HandlerOutcome]]:
        """Per event, each handler's outcome (from its newest linked job), by handler name."""
        ...

    def prune_events(self, older_than_days: float, *, now: float | None = None, batch: int = 1000,
                     dry_run: bool = False) -> int:
        """Delete events emitted more than ``older_than_days`` ago; returns how many."""
        ...

    def count_events(self, status: str | None = None) -> int:
        """How many events are stored (with ``status``, when given)."""
        ...

    def count_unhandled(self) -> int:
        """Events no handler took."""
        ...

    def unhandled_events(self, *, limit: int = 200) -> list[EventRow]:
        """Events no handler took, newest first."""
        ...
