"""Figures in the storage seam: counts, per-minute rates, failures, running jobs.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from typing import Protocol

from runner.store.rows import FailureRow, JobFilter, JobRow
from runner.store.states import JobState
from runner.store.views import FAILURE_CAP


class StatsStore(Protocol):
    """The reads behind metrics, health and the dashboard's windows."""

    def count_in_state(self, state: JobState) -> int:
        """Jobs in one state (a covering range of the ``(state, created_at)`` index)."""
        ...

    def completed_per_minute(self, start: float) -> list[tuple[int, int]]:
        """(minute index from ``start``, completions) for jobs finished since ``start``."""
        ...

    def failed_per_minute(self, start: float) -> list[tuple[int, int]]:
        """(minute index from ``start``, failed attempts) for attempts failed since ``start``."""
        ...

    def finished_per_second(self, since: float,
                            until: float | None = None) -> tuple[dict[int, int], dict[int, int]]:
        """Completions and failed attempts per whole second in ``[since, until)``."""
        ...

    def queue_oldest(self, now: float) -> list[tuple[str, float | None]]:
        """Each queue with waiting jobs and the ``run_at`` of its oldest due one."""
        ...

    def waiting_in_queue(self, queue: str) -> int:
        """Waiting jobs of one queue, read through its partial index."""
        ...

    def running_per_queue(self) -> dict[str, int]:
        """Running jobs per queue."""
        ...

    def running_jobs(self) -> list[tuple[str | None, str, str, float | None]]:
        """(lease owner, id, task, started_at) of every running job, oldest start first."""
        ...

    def unfinished_by_queue(self) -> list[tuple[str, str, int]]:
        """(queue, state, jobs) of waiting, running and dead jobs (finished history not read)."""
        ...

    def counts_by_queue_and_state(self) -> list[tuple[str, str, int]]:
        """(queue, state, jobs) for every pair that has jobs."""
        ...

    def job_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                 offset: int = 0) -> list[JobRow]:
        """One page of jobs, newest first, always read through an index."""
        ...

    def count_jobs_capped(self, filters: JobFilter | None = None, *,
                          cap: int = 10_000) -> tuple[int, bool]:
        """How many jobs match, counting no further than ``cap``; returns (count, capped)."""
        ...

    def failure_rows(self, *, limit: int = 200, cap: int = FAILURE_CAP) -> list[FailureRow]:
        """Retrying and dead jobs grouped by error type and message, biggest group first.

        Only the newest ``cap`` failed jobs (by creation) are grouped: every one while
        there are no more, and the cost stays that of ``cap`` jobs when there are.
        """
        ...

    def failure_messages(self, error_type: str | None, *, prefix: str = "") -> list[str | None]:
        """The distinct messages of the retrying and dead jobs with ``error_type`` that
        start with ``prefix`` (``""``: every one, None included), whatever their age.

        Reads the failed jobs of that error type only, through their index by error.
        """
        ...

    def failure_signature(self, *, cap: int = FAILURE_CAP) -> tuple[int, int]:
        """Changes whenever a failure group may have: (failed jobs, newest failed attempt id).

        Failed jobs are counted no further than ``cap + 1``: more than ``cap`` says
        :meth:`failure_rows` grouped only the newest ``cap``.
        """
        ...

    def completions_since(self, since: float) -> list[tuple[str, str, float | None, float]]:
        """(task, queue, started_at, finished_at) of jobs completed since ``since``."""
        ...

    def failed_attempts_since(self, since: float) -> list[tuple[str, str, float, int]]:
        """(task, queue, failed_at, retried) of attempts failed since ``since``."""
        ...

    def dead_by_task(self, since: float) -> list[tuple[str, str, int | None, int]]:
        """(task, queue, died since ``since``, dead now) per task and queue with dead jobs."""
        ...

    def active_schedule_fires(self) -> list[tuple[str, float | None]]:
        """(name, next_fire_at) of every active schedule."""
        ...
