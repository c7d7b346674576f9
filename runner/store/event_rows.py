"""Events as the store takes and returns them, the same for every backend."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from runner.store.states import FINAL, WAITING, JobState


class EventStatus:
    """Where an event is in its life (the ``status`` column)."""

    #: written by emit(); its dispatch job has not run yet
    PENDING = "pending"
    #: fanned out: one job per matching handler exists
    DISPATCHED = "dispatched"
    #: the dispatching worker had no handler for it (kept, visible, replayable)
    UNHANDLED = "unhandled"


#: How a handler job's state reads in the event log.
OUTCOME_OF_STATE: dict[str, str] = {**{s: "pending" for s in WAITING},
                                    JobState.EXECUTING: "running",
                                    **{s: s.value for s in FINAL}}


class NewEvent(NamedTuple):
    """What a producer writes for one event (``data`` is JSON text).

    A named tuple: ``emit_many`` makes one per event, and a frozen dataclass's
    ``__init__`` costs as much as encoding the event's data.
    """

    id: str
    name: str
    data: str
    key: str | None
    source: str


@dataclass(frozen=True)
class EventRow:
    """An event as the CLI and the dashboard see it."""

    id: str
    name: str
    data: str
    key: str | None
    emitted_at: float
    source: str | None
    status: str
    dispatched_at: float | None
    dispatch_job: str | None
    handlers: int
    deliveries: int

    @property
    def payload(self) -> Any:
        """The event data, decoded from JSON."""
        return json.loads(self.data)


@dataclass(frozen=True)
class HandlerOutcome:
    """One handler's deliveries of one event: the newest decides the outcome."""

    handler: str
    outcome: str
    job_id: str
    deliveries: int
    attempts: int
