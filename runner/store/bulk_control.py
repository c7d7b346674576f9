"""Control of existing jobs in the storage seam: retry, cancel, discard, in bulk.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from runner.store.rows import JobFilter


class ControlStore(Protocol):
    """Writes the CLI and the dashboard make to jobs that already exist."""

    def retry_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        """Make finished or retrying jobs waiting again, due now; returns how many changed."""
        ...

    def cancel_jobs(self, job_ids: Sequence[str], *, now: float, by: str | None = None) -> int:
        """Cancel jobs that have not started, their reason naming ``by`` (who asked, as
        :meth:`request_cancel` names it; None: "by hand"); returns how many changed."""
        ...

    def discard_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        """Mark waiting or dead jobs cancelled ("discarded"); returns how many changed."""
        ...

    def redispatch_event(self, event_id: str, dispatch_job: str, *, now: float) -> None:
        """Put an event back to ``pending`` and make its dispatch job due again, in one step."""
        ...

    def count_for_bulk(self, filters: JobFilter, states: Sequence[str]) -> tuple[int, int]:
        """(jobs, highest rowid) of the jobs of ``filters`` in ``states``: a bulk action's set."""
        ...

    def run_bulk(self, verb: str, filters: JobFilter, states: Sequence[str], *, up_to_rowid: int,
                 now: float, chunk: int = 500, by: str | None = None) -> int:
        """Retry now, discard or cancel a counted set, oldest first, in short transactions;
        how many. A cancel's reason names ``by`` as :meth:`cancel_jobs` does."""
        ...

    def count_failure_group(self, error_type: str | None,
                            messages: Sequence[str | None]) -> tuple[int, int, float | None]:
        """(jobs, highest rowid, latest ``last_failed_at``) of the retrying and dead jobs
        with ``error_type`` and one of ``messages``: a failure group action's set, every
        one of it (no cap), read through the failed jobs' index by error."""
        ...

    def run_failure_group(self, verb: str, error_type: str | None,
                          messages: Sequence[str | None], *, up_to_rowid: int,
                          failed_until: float | None, now: float, chunk: int = 500) -> int:
        """Retry now (``verb`` "retry") or discard the counted set of a failure group, at
        most ``chunk`` jobs per short transaction (or script); returns how many changed.

        Jobs added after the count (rowid above ``up_to_rowid``) and jobs that failed
        after it (``last_failed_at`` past ``failed_until``: a job retried by this walk
        that fails again meanwhile among them) are left alone.
        """
        ...

