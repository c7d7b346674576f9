"""Flow control in the storage seam: pauses, cancel requests, backpressure.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from runner.store.rows import PauseRow
from runner.store.states import JobState


class FlowControlStore(Protocol):
    """Paused queues and tasks, requests to cancel jobs, counts of refused jobs."""

    def set_pause(self, kind: str, name: str, paused: bool, *, now: float,
                  by: str | None = None) -> bool:
        """Pause or resume a ``queue`` or ``task`` (claims skip paused ones); True if changed."""
        ...

    def seed_pauses(self, kind: str, names: Sequence[str], *, now: float) -> None:
        """Pause the named queues or tasks that have no recorded state (settings' initial state)."""
        ...

    def list_pauses(self) -> list[PauseRow]:
        """Every recorded pause or resume."""
        ...

    def request_cancel(self, job_id: str, *, by: str, now: float) -> JobState | None:
        """Cancel a waiting job now, or ask the worker of a running one to stop it.

        Returns the state the job was in (None: no such job); other states are left alone.
        """
        ...

    def cancel_requests(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Of these jobs, those whose running attempt was asked to stop: id -> requester."""
        ...

    def backpressure_totals(self) -> dict[str, tuple[int, int]]:
        """Per queue: (jobs rejected, jobs dropped) by full queues, lifetime counters."""
        ...

    def release_parked(self) -> int:
        """Let out every job a concurrency limit parked (a worker starts with limits that
        may differ from those that parked them: :mod:`runner.store.parking`); how many."""
        ...
