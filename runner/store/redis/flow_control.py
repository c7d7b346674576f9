"""What Redis does not do yet of pause, cancel and backpressure: said plainly, never faked.

Reads answer "none" (no pauses, no cancel requests, no refusals counted);
pausing and cancelling a running job refuse with the reason, so nothing that
looks done is silently ignored. A waiting job can be cancelled as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.errors import ConfigError, InvalidAction
from runner.store.rows import JobRow, PauseRow
from runner.store.states import CANCELLABLE, LIVE, JobState


class FlowControl:
    """The pause, cancel and backpressure operations of the Store protocol on Redis."""

    url: str
    prefix: str

    def get_job(self, job_id: str) -> JobRow: ...  # the reads' (mixed in beside)

    def cancel_jobs(self, job_ids: Sequence[str], *, now: float) -> int: ...

    def counts_by_queue_and_state(self) -> list[tuple[str, str, int]]: ...

    def _not_yet(self, what: str) -> ConfigError:
        return ConfigError(f"{self.url} ({self.prefix}): {what} is not available with "
                           "queue_type redis yet; use sqlite")

    def set_pause(self, kind: str, name: str, paused: bool, *, now: float,
                  by: str | None = None) -> bool:
        raise self._not_yet("pausing queues and tasks")

    def seed_pauses(self, kind: str, names: Sequence[str], *, now: float) -> None:
        if names:
            raise self._not_yet("[queues.NAME] paused")

    def list_pauses(self) -> list[PauseRow]:
        return []

    def request_cancel(self, job_id: str, *, by: str, now: float) -> JobState | None:
        state = JobState(self.get_job(job_id).state)
        if state in CANCELLABLE:
            self.cancel_jobs([job_id], now=now)
        elif state is JobState.EXECUTING:
            raise InvalidAction(f"job {job_id} is running; cancelling a running job is not "
                                "available with queue_type redis yet")
        return state

    def cancel_requests(self, job_ids: Sequence[str]) -> dict[str, str]:
        return {}

    def backpressure_totals(self) -> dict[str, tuple[int, int]]:
        return {}

    def unfinished_by_queue(self) -> list[tuple[str, str, int]]:
        counted = {*LIVE, JobState.DEAD}
        return [(q, s, n) for q, s, n in self.counts_by_queue_and_state() if s in counted]
