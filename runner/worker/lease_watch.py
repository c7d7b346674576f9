"""Finding out that a lease was lost: a job this worker still runs that another took.

A worker that stalls past its lease (a paused process, a call blocked in C, a host
that slept) comes back to jobs another worker's recovery requeued, buried or ran
again. Its thread runs on, and whether its outcome counts depends on what happened
meanwhile; the worker says so once per attempt, in a warning naming the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from runner.attempt import Attempt
from runner.errors import JobNotFound
from runner.store.backend import Store
from runner.store.rows import JobFilter, JobRow
from runner.store.states import FINAL, WAITING, JobState

logger = logging.getLogger(__name__)


class LeaseWatch:
    """After each heartbeat (:meth:`check`): warn of running attempts whose lease was taken."""

    def __init__(self, store: Store, owner: str, running: Callable[[], list[Attempt]]) -> None:
        self.store = store
        self.owner = owner
        self.running = running
        self._told: set[tuple[str, int]] = set()

    def check(self, held: Collection[str] | None = None) -> list[str]:
        """Warn of each attempt that lost its lease since the last look; their job ids.

        ``held``: the jobs the heartbeat just before found still leased to this worker
        (:attr:`runner.store.rows.Beat.held`); without it they are read (their ids).
        Only an attempt not held is read further (its row).
        """
        attempts = [a for a in self.running() if not _ending(a)]
        self._told &= {(a.claimed.id, a.claimed.attempt) for a in attempts}
        if not attempts:
            return []
        if held is None:
            mine = JobFilter(state=JobState.EXECUTING.value, worker=self.owner)
            held = set(self.store.job_ids(mine))
        lost = []
        for attempt in attempts:
            key = (attempt.claimed.id, attempt.claimed.attempt)
            if attempt.claimed.id in held or key in self._told:
                continue
            row = self._taken(attempt)
            # The row was not written by this attempt's own outcome: it had not begun.
            if row is None or _ending(attempt):
                continue
            self._told.add(key)
            lost.append(attempt.claimed.id)
            what, then = _what_happened(row, attempt.claimed.attempt)
            logger.warning("lost the lease of job %s (%s, attempt %d): its lease expired "
                           "and %s; %s", row.id, row.task, attempt.claimed.attempt, what, then)
        return lost

    def _taken(self, attempt: Attempt) -> JobRow | None:
        """The job's row when another worker took the attempt's lease, else None.

        Taken means claimed again since (a later attempt), or, not claimed yet, charged
        a crash for this attempt by a recovery pass: this worker's own writes do neither.
        """
        try:
            row = self.store.get_job(attempt.claimed.id)
        except JobNotFound:
            return None
        ours = attempt.claimed.attempt
        if row.attempt > ours:
            return row
        if row.attempt == ours and not (row.state == JobState.EXECUTING
                                        and row.lease_owner == self.owner):
            crashed = any(e.kind == "crash" and e.attempt == ours
                          for e in self.store.job_errors(row.id))
            return row if crashed else None
        return None


def _ending(attempt: Attempt) -> bool:
    return attempt.settling or attempt.settled or attempt.abandoned


def _what_happened(row: JobRow, ours: int) -> tuple[str, str]:
    """What became of a job whose lease an attempt lost, and what its outcome will do."""
    ignored = "this attempt runs on, but its outcome will not be written"
    if row.attempt > ours:
        if row.state == JobState.EXECUTING:
            return (f"worker {row.lease_owner} runs it now as attempt {row.attempt}",
                    f"{ignored} (attempt {row.attempt} writes its own)")
        return f"attempt {row.attempt} of it ran since and left it {row.state}", ignored
    if row.state in WAITING:
        return (f"it was requeued ({row.reason or row.state})",
                "this attempt runs on; its outcome is written if it ends before a worker "
                "claims the job again, else the job runs again")
    if row.state in FINAL:
        return f"it was left {row.state} ({row.reason or '-'})", ignored
    return f"it is {row.state}", ignored
