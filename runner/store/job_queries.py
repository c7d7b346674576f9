"""Job reads of the CLI in the storage seam: lists, counts, one job, its errors.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from typing import Protocol

from runner.store.rows import AttemptError, JobFilter, JobRow, QueueDepth, WorkerRow


class QueriesStore(Protocol):
    """Reads of jobs and workers for the CLI and control."""

    def list_jobs(self, filters: JobFilter | None = None, *, limit: int = 100,
                  offset: int = 0) -> list[JobRow]:
        """Jobs matching ``filters``, newest first, one page at a time."""
        ...

    def count_jobs(self, filters: JobFilter | None = None) -> int:
        """How many jobs match ``filters``."""
        ...

    def job_ids(self, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
        """Ids of the jobs matching ``filters`` (for bulk actions)."""
        ...

    def get_job(self, job_id: str) -> JobRow:
        """One job by id, or by a unique start or end of its id."""
        ...

    def job_errors(self, job_id: str) -> list[AttemptError]:
        """Every failed attempt of a job, oldest first (the timeline)."""
        ...

    def counts_by_state(self) -> dict[str, int]:
        """Number of jobs in each state (states with none are 0)."""
        ...

    def queue_depths(self, now: float | None = None) -> list[QueueDepth]:
        """Waiting and running jobs per queue, with the age of the oldest due waiting job."""
        ...

    def list_workers(self, *, include_stopped: bool = False) -> list[WorkerRow]:
        """Worker processes, most recent heartbeat first."""
        ...

    def stored_result(self, job_id: str) -> bytes | None:
        """The result stored for a job (peeked, never consumed), or None."""
        ...

    def job_payload(self, job_id: str) -> bytes | None:
        """The serialized task of a job in any state (its arguments), or None."""
        ...
