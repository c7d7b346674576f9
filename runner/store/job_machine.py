"""The job state machine of the storage seam: enqueue, claim, and each outcome.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from runner.flow import FlowLimits
from runner.store.job_rows import Ack, Enqueued, FailureInfo, NewJob, QueueBound
from runner.store.rows import ClaimResult
from runner.store.states import HandBack, JobState


class JobsStore(Protocol):
    """Writes that move jobs between states, each one atomic step."""

    def enqueue(self, jobs: Sequence[NewJob], *, now: float, queue_size: int = 0,
                bounds: Mapping[str, QueueBound] | None = None) -> Enqueued:
        """Insert jobs (``scheduled`` when ``run_at`` is later than ``now``) in one step.

        A job whose ``unique_key`` names a job in its ``unique_states`` (default:
        waiting or running) created within ``unique_for`` seconds is not written;
        the result maps it to that job. Each queue holds at most its bound in
        ``bounds`` (else ``queue_size``, ``reject``; 0 = unbounded) waiting jobs,
        even with concurrent producers: ``drop_oldest`` cancels the oldest
        waiting ones in the same step (reason given, counted as dropped).

        Raises:
            QueueFull: a ``reject`` or ``block`` queue would overflow (``.queue``,
                ``.room``); nothing is written. A ``reject`` is counted as rejected.
            DuplicateJob: a job has the id of a new one.
        """
        ...

    def claim(self, *, now: float, owner: str, lease_seconds: float, want: int,
              busy: bool = False, queues: Sequence[str] = (), acks: Sequence[Ack] = (),
              labels: Mapping[str, tuple[str, str]] | None = None,
              limits: FlowLimits | None = None, leave_suspects: bool = False,
              ahead: bool = False) -> ClaimResult:
        """Write ``acks`` and claim up to ``want`` due jobs under a lease, in one step.

        Each ack's results and next steps are written with it. With ``limits``, the
        claim honours them in the same step (see :mod:`runner.flow`): highest
        effective priority first (aging), FIFO within a priority; queues share
        claims by weight (smooth weighted round robin, counters kept in the store);
        no queue, task or concurrency key runs more jobs at once than its limit
        (counting ``executing`` jobs of every worker); no queue or task starts
        faster than its rate (token buckets kept in the store). A job held back
        stays waiting with no attempt spent; when nothing is claimed, ``next_due``
        is the next token of a bucket that holds jobs back, if sooner.

        A job that was running when a worker died (a suspect) is claimed alone, and
        only while ``busy`` is False; with ``busy``, a due suspect stops the claim
        (``suspect`` in the result: the caller lets its jobs finish first). With
        ``leave_suspects`` (the caller cannot run one alone now), suspects stay
        waiting and the other jobs are claimed as if there were none.

        ``ahead`` says the claim takes jobs ahead of the caller's threads (short jobs,
        many per claim). A backend may then take a claim's shares in runs, one queue
        after another (:func:`runner.flow.weighted_run`), rather than interleaved: the
        shares hold over consecutive claims, to within one claim's jobs.
        """
        ...

    def complete(self, acks: Sequence[Ack],
                 labels: Mapping[str, tuple[str, str]] | None = None) -> None:
        """Record finished attempts: ``executing`` → ``completed``."""
        ...

    def retry(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
              now: float, run_at: float | None, reason: str | None, data: bytes | None = None,
              results: Sequence[tuple[str, bytes]] = (), jobs: Sequence[NewJob] = (),
              acks: Sequence[Ack] = ()) -> None:
        """A failed attempt with another to come: ``executing`` → ``retrying`` at ``run_at``.

        Like :meth:`complete` and every outcome of an attempt, written only while
        ``attempt`` still holds the job: ``executing``, or ``available`` after its lease
        expired and before a later attempt claimed it. A worker that stalled past its
        lease and reports late writes nothing over the attempt that replaced its own.
        """
        ...

    def bury(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
             now: float, reason: str | None, results: Sequence[tuple[str, bytes]] = (),
             jobs: Sequence[NewJob] = (), acks: Sequence[Ack] = ()) -> None:
        """A failed attempt with none to come: ``executing`` → ``dead``."""
        ...

    def cancel_attempt(self, job_id: str, attempt: int | None, *, now: float,
                       reason: str | None, results: Sequence[tuple[str, bytes]] = (),
                       unstarted: bool = False) -> None:
        """Revoked or expired when its worker looked: → ``cancelled`` (while ``attempt``
        holds the job, as for :meth:`retry`; None: whichever attempt is running).

        ``unstarted``: the attempt never began (the job waited in its worker's prefetch
        buffer), so the claim is undone: the attempt is not counted, and the run time is
        that of the last finished attempt (none for a first one), as for a job cancelled
        while it waited."""
        ...

    def hand_back(self, job_id: str, attempt: int | None, *, now: float, reason: str | None,
                  results: Sequence[tuple[str, bytes]] = ()) -> HandBack:
        """Interrupted: ``executing`` → ``available``, the attempt not used (only while
        ``attempt`` is the one running; None: whichever attempt is running). The next
        claim runs that attempt again: its worker must write no outcome of it after this.

        An attempt whose cancel was asked (:meth:`request_cancel`) is ``cancelled``
        instead, as asked: handed back, it would run again. Returns which of the two
        it did, or :attr:`HandBack.NOTHING` when ``attempt`` no longer held the job.
        """
        ...

    def release(self, job_id: str, run_at: float) -> None:
        """Claimed too early: back to ``scheduled`` at ``run_at``, the attempt not used."""
        ...

    def unclaim(self, job_ids: Sequence[str]) -> None:
        """Claimed but never started (a stopping worker): back to ``available``."""
        ...

    def rearm(self, job: NewJob, *, now: float, queue_size: int = 0) -> bool:
        """A finished job runs again as the same row; False when it is not finished."""
        ...

    def cancel_waiting(self, *, now: float, reason: str, due: bool) -> int:
        """Cancel every waiting job due by ``now`` (or, ``due`` False, due later)."""
        ...

    def set_progress(self, job_id: str, done: float, total: float | None,
                     message: str | None) -> None:
        """Record a running job's progress."""
        ...

    def has_future_jobs(self) -> bool:
        """True when some job waits for a later ``run_at``."""
        ...

    def job_is_final(self, job_id: str) -> bool:
        """True when the job completed, died or was cancelled (or there is no such job)."""
        ...

    def job_state(self, job_id: str) -> JobState | None:
        """The job's state, read alone; None when there is no such job (yet)."""
        ...
