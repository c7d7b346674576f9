"""How a worker writes the outcomes of its attempts: the other half of the job storage.

A completion is queued in the process and written with the next claim (one
commit per batch), unless it carries a result or a next pipeline step, or its
job counts against a concurrency limit: then it is written at once, all in one
transaction. A write that fails keeps the
outcomes queued, and every later write tries them again; meanwhile their jobs'
leases are still extended. Failures, cancellations and hand-backs are written
at once, with whatever completions are queued.

Times arrive as this host's clock reads them and are written as the server's
(:class:`~runner.store.server_clock.ServerClock`): a retry's ``run_at`` is judged
by every host, and an attempt's start and end then share one clock whichever
host claimed it and whichever finished it.

Each attempt that starts is noted in the process's running file (see
:meth:`runner.store.backend.Store.attempt_log`) until its outcome is committed.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Sequence

from runner.errors import DatabaseCorrupt, DiskFull
from runner.store.backend import AttemptLog, Store
from runner.store.job_rows import Ack, Failed, FailureInfo, NewJob
from runner.store.server_clock import ServerClock
from runner.store.states import HandBack, JobState

logger = logging.getLogger(__name__)


class OutcomeWriter:
    """The outcome half of the job storage; needs the attributes declared here."""

    store: Store
    clock: ServerClock
    owner: str | None
    running: AttemptLog | None
    on_disk_full: Callable[[DiskFull], None] | None
    on_corrupt: Callable[[DatabaseCorrupt], None] | None
    _acks: list[Ack]
    _failures: list[Failed]
    _stopping: bool
    _labels: dict[str, tuple[str, str]]
    _ack_lock: threading.Lock
    _mean_attempt: float
    wake: Callable[[], None]
    holds_limit: Callable[[str], bool]

    def attempt_started(self, job_id: str, attempt: int) -> None:
        """Record that an attempt starts now (charged a crash if the process dies)."""
        if self.running is not None:
            self.running.started(job_id, attempt)

    def attempt_settled(self, job_id: str) -> None:
        """The attempt's outcome was committed elsewhere (a stuck job charged)."""
        self._settled([job_id])

    def _settled(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        for job_id in ids:
            self._labels.pop(job_id, None)
        running = self.running
        if running is not None:
            running.settled(ids)

    def ack_completed(self, job_id: str, attempt: int, *, started_at: float | None = None,
                      finished_at: float | None = None,
                      results: Sequence[tuple[str, bytes]] = (),
                      jobs: Sequence[NewJob] = ()) -> None:
        """Record a success with its results and next steps, all in one transaction.

        A bare success is written with the next claim (or :meth:`flush_acks`);
        one with results or next steps at once, so a caller waiting on them
        sees them. ``started_at`` is when the attempt really began, which is
        later than the claim for a job that waited in the prefetch buffer. If
        the write fails the outcome stays queued here, the job's lease is still
        extended, and every later write tries it again.
        """
        clock = self.clock
        finished = clock.now() if finished_at is None else clock.to_server(finished_at)
        started = None if started_at is None else clock.to_server(started_at)
        ack = Ack(job_id, attempt, started, finished, tuple(results), tuple(clock.jobs(jobs)))
        with self._ack_lock:
            self._acks.append(ack)
            if started is not None:  # the claim size follows how long attempts take
                self._mean_attempt += 0.1 * (finished - started - self._mean_attempt)
        limited = self.holds_limit(job_id)
        if (results or jobs or limited) and self.try_flush_acks() and limited:
            # Its slot under a concurrency limit is free only once the row says so:
            # write it now and let every worker look, rather than at the next claim.
            self.wake()

    def try_flush_acks(self) -> bool:
        """:meth:`flush_acks`, logging instead of raising; False when nothing could be written."""
        try:
            self.flush_acks()
        except DiskFull as exc:
            logger.error("outcomes of %d jobs not written (disk full), kept and retried: %s",
                         self.pending_outcomes, exc)
            if self.on_disk_full is not None:
                self.on_disk_full(exc)
            return False
        except DatabaseCorrupt as exc:
            logger.error("outcomes of %d jobs not written: %s", self.pending_outcomes, exc)
            if self.on_corrupt is not None:
                self.on_corrupt(exc)
            return False
        except Exception as exc:
            logger.warning("outcomes of %d jobs not written yet, kept and retried with the "
                           "next write: %s", self.pending_outcomes, exc)
            return False
        return True

    @property
    def pending_outcomes(self) -> int:
        """Finished attempts whose outcome is not written yet."""
        return len(self._acks)

    def failure_pending(self, job_id: str) -> bool:
        """Whether a failure of ``job_id`` waits to be written at the stop (see :meth:`fail`)."""
        with self._ack_lock:
            return any(f.job_id == job_id for f in self._failures)

    def flush_failures(self) -> None:
        """Write the failures a drain could not write when they happened (see :meth:`fail`)."""
        with self._ack_lock:
            failures, self._failures = self._failures, []
        while failures:
            f = failures[0]
            try:
                if f.state == JobState.RETRYING.value:
                    self.store.retry(f.job_id, f.attempt, f.failure, worker=f.worker, now=f.now,
                                     run_at=f.run_at, reason=f.reason, data=f.data,
                                     results=f.results, jobs=f.jobs)
                else:
                    self.store.bury(f.job_id, f.attempt, f.failure, worker=f.worker, now=f.now,
                                    reason=f.reason, results=f.results, jobs=f.jobs)
            except BaseException:
                with self._ack_lock:
                    self._failures[:0] = failures
                raise
            failures.pop(0)
            self._settled([f.job_id])

    def flush_acks(self) -> None:
        """Write pending completions now."""
        with self._ack_lock:
            acks, self._acks = self._acks, []
        if acks:
            try:
                self.store.complete(acks, self._labels)
            except BaseException:
                with self._ack_lock:
                    self._acks[:0] = acks
                raise
            self._settled(a.job_id for a in acks)

    def fail(self, job_id: str, attempt: int, failure: FailureInfo, *, state: str,
             reason: str | None = None, run_at: float | None = None,
             data: bytes | None = None, results: Sequence[tuple[str, bytes]] = (),
             jobs: Sequence[NewJob] = ()) -> None:
        """Record a failed attempt: ``retrying`` (with ``run_at``), or ``dead``.

        ``results`` (the error huey stores for each step of the pipeline) and
        ``jobs`` (an error handler) are written in the same transaction.
        """
        clock = self.clock
        now = clock.now()
        if run_at is not None:
            run_at = clock.to_server(run_at)
        if failure.started_at is not None:
            failure = dataclasses.replace(failure, started_at=clock.to_server(failure.started_at))
        jobs = clock.jobs(jobs)
        limited = self.holds_limit(job_id)
        with self._ack_lock:
            acks, self._acks = self._acks, []

        retrying = JobState(state) is JobState.RETRYING
        try:
            if retrying:
                self.store.retry(job_id, attempt, failure, worker=self.owner, now=now,
                                 run_at=run_at, reason=reason, data=data, results=results,
                                 jobs=jobs, acks=acks)
            else:
                self.store.bury(job_id, attempt, failure, worker=self.owner, now=now,
                                reason=reason, results=results, jobs=jobs, acks=acks)
        except BaseException as exc:
            with self._ack_lock:
                self._acks[:0] = acks
                if self._stopping and isinstance(exc, Exception):
                    # Draining: the stop writes it with the completions, or keeps it
                    # with them for the next start (see JobStorage.stop_consuming).
                    self._failures.append(Failed(
                        job_id, attempt, failure, JobState(state).value, self.owner, now,
                        reason, run_at, data, tuple(results), tuple(jobs)))
            raise
        self._settled([job_id, *(a.job_id for a in acks)])
        if retrying or limited:  # a job to run again, or a slot of a limit freed
            self.wake()

    def finish(self, job_id: str, attempt: int | None, state: str, reason: str | None,
               results: Sequence[tuple[str, bytes]] = (), *,
               unstarted: bool = False) -> HandBack | None:
        """Record an outcome of ``attempt`` without an error: cancelled, or handed back as
        available (nothing once a later attempt has the job; None: whichever runs).

        ``results`` (the error huey stores for a cancelled job) go in the same transaction.
        Handing back returns what the store did (a job whose cancel was asked while it
        ran ends cancelled instead); a cancel returns None. ``unstarted``: a cancel of an
        attempt that never began (claimed ahead, cancelled in the buffer) undoes the claim.
        """
        now = self.clock.now()
        limited = self.holds_limit(job_id)
        done: HandBack | None = None
        if JobState(state) is JobState.AVAILABLE:
            done = self.store.hand_back(job_id, attempt, now=now, reason=reason,
                                        results=results)
        else:
            self.store.cancel_attempt(job_id, attempt, now=now, reason=reason,
                                      results=results, unstarted=unstarted)
        self._settled([job_id])
        if done is HandBack.HANDED_BACK or limited:
            self.wake()
        return done

    def job_state(self, job_id: str) -> JobState | None:
        """The job's state, None when there is no such job (yet); a job that ends writes its
        result, if any, in the same transaction as its final state."""
        return self.store.job_state(job_id)
