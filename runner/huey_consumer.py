"""The consuming side of the huey instance: claimed jobs run as attempts, and every
outcome is written to the job's own row.

* dequeue claims with a lease; a row whose payload cannot be read goes to
  ``dead`` with the reason, never deleted;
* each attempt is tracked (:class:`runner.attempt.Attempt`) so the stall
  watchdog can write off a thread stuck in C and shutdown can hand jobs back;
* every outcome (completed, retrying, dead, cancelled, handed back) is written
  to the same row, with the traceback of each failed attempt; retries use our
  backoff policy and stay the same job;
* huey's revocation reads are skipped while the claim saw none; a database that
  does not answer them neither fails a job that ran (the clearing is written
  later) nor starts one unread (it waits, still claimed).

:class:`HueyConsumer` is a mixin of :class:`runner.runner_huey.RunnerHuey`, before
huey's ``Huey`` (whose methods its ``super()`` calls reach).
"""

from __future__ import annotations

import copy
import datetime
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from huey import signals as S
from huey.constants import EmptyData

from runner.attempt import (
    Attempt,
    CurrentJob,
    ThreadWrittenOff,
    _local,
    describe_failure,
    error_text,
    job_context,
    pipeline_ids,
    run_attempt_end_hooks,
    stuck_message,
)
from runner.config import Settings
from runner.errors import (
    DatabaseLocked,
    JobCancelled,
    SerializationError,
    TaskTimeout,
    UnknownTask,
)
from runner.eta import to_eta, to_timestamp
from runner.pass_failure import PASSING
from runner.retry import backoff_delay
from runner.store.job_rows import Claimed, FailureInfo
from runner.store.job_storage import JobStorage
from runner.store.states import HandBack, JobState
from runner.task import Failure, RunnerTask, TaskRegistry

logger = logging.getLogger(__name__)

#: Seconds after its claim within which an attempt trusts the claim's revocation check.
_FRESH_CLAIM = 0.05
#: Seconds between reads of a job's revocation while the database does not answer
#: (doubling from the first to the last); each read also waits out the store's deadline.
_REREAD_FIRST, _REREAD_MAX = 0.05, 1.0
_ERROR_SIGNALS = {S.SIGNAL_TIMEOUT: "timeout", S.SIGNAL_LOCKED: "locked",
                  S.SIGNAL_RATE_LIMITED: "rate_limited",
                  S.SIGNAL_CANCELED: JobState.CANCELLED.value}


class _NotStarted(Exception):  # noqa: N818 - a signal between two methods, not an error
    """The attempt ends before its task starts: handed back at shutdown, or cancelled."""


@contextmanager
def _said_of(attempt: Attempt) -> Iterator[None]:
    """Lines logged about a job once its attempt is over, stamped with the job and kept
    with its logs, as the lines of the attempt itself are."""
    token = job_context.set(attempt.current)
    try:
        yield
    finally:
        job_context.reset(token)


class HueyConsumer:
    """huey's consumer hooks over the jobs table (see the module docstring)."""

    # Given by RunnerHuey and huey's Huey.
    jobs: JobStorage | None
    settings: Settings
    _running: dict[str, Attempt]
    _attempt_lock: threading.Lock
    on_deadline: Callable[[float], None] | None
    _tasks_in_flight: set
    task_registry: TaskRegistry

    def dequeue(self) -> RunnerTask | None:
        jobs = self.jobs
        if jobs is None:
            return super().dequeue()
        if jobs.is_retired(threading.current_thread()):
            raise ThreadWrittenOff
        claimed = jobs.claim_next()
        if claimed is None:
            return None
        task = self._read_claimed(jobs, claimed)
        if task is not None:
            _local.claimed = claimed
        return task

    def _read_claimed(self, jobs: JobStorage, claimed: Claimed) -> RunnerTask | None:
        """The task of a claimed job, or None: a job that cannot be read goes to dead with
        the reason (its payload does not load, or it names a task nobody registered here)."""
        message = None
        try:
            message = self.serializer.deserialize(claimed.data)
            return self._registry.create_task(message)
        except Exception as exc:
            unknown = self._unknown_task(message)
            if unknown is not None:
                # The README promises such a job dies with its reason: said plainly, with
                # the fix, instead of huey's "not found in TaskRegistry".
                reason = (f"unknown task {unknown}: no module of [runner] imports defines it "
                          "(add its module there, then retry the job)")
                failure = describe_failure(UnknownTask(reason), "unknown_task", None)
            else:
                reason = f"cannot read job: {type(exc).__name__}: {exc}"
                failure = describe_failure(exc, "unreadable", None)
        logger.error("job %s goes to dead: %s", claimed.id, reason)
        jobs.fail(claimed.id, claimed.attempt, failure, state=JobState.DEAD, reason=reason)
        jobs.release_inflight(claimed.id)
        return None

    def _unknown_task(self, message: Any) -> str | None:
        """The first task a job's message names (itself, its pipeline's steps, its error
        handler, its chord's callback) that this worker does not register, or None."""
        if not hasattr(message, "name"):  # None, or not huey's Message: not a name to look up
            return None
        try:
            self._registry.string_to_task(message.name)
        except Exception:
            return message.name
        chord = getattr(message, "chord_config", None)
        for nested in (getattr(message, "on_complete", None), getattr(message, "on_error", None),
                       chord[3] if isinstance(chord, tuple) and len(chord) == 4 else None):
            unknown = self._unknown_task(nested)
            if unknown is not None:
                return unknown
        return None

    def execute(self, task: Any, timestamp: datetime.datetime | None = None) -> Any:
        claimed: Claimed | None = getattr(_local, "claimed", None)
        _local.claimed = None
        jobs = self.jobs
        if claimed is None or claimed.id != task.id or jobs is None:
            return super().execute(task, timestamp)
        cancelled_by = jobs.take_cancel(claimed.id)
        if cancelled_by is not None:  # cancelled while it waited in this process
            jobs.cancel_unstarted(claimed, cancelled_by)
            return None
        attempt = Attempt(claimed, started_at=time.time(), thread=threading.current_thread(),
                          task=task, pipeline=frozenset(pipeline_ids(task)))
        attempt.current = CurrentJob(
            claimed.id, getattr(getattr(task, "wrapper", None), "task_name", task.name),
            claimed.attempt, attempt.started_at, attempt.interrupt)
        timeout = getattr(task, "timeout", None)
        if timeout:
            attempt.timeout = float(timeout)
            attempt.deadline = time.monotonic() + attempt.timeout
        _local.attempt = attempt
        context = job_context.set(attempt.current)
        with self._attempt_lock:
            self._running[claimed.id] = attempt
        if attempt.deadline is not None and self.on_deadline is not None:
            self.on_deadline(attempt.deadline)
        jobs.attempt_started(claimed.id, claimed.attempt)
        try:
            return super().execute(task, timestamp)
        except _NotStarted:
            return None
        except BaseException as exc:
            attempt.escaped = exc
            raise
        finally:
            run_attempt_end_hooks(attempt.current)
            _local.attempt = None
            job_context.reset(context)
            with self._attempt_lock:
                if self._running.get(claimed.id) is attempt:
                    del self._running[claimed.id]
                attempt.settling = True
            if not attempt.abandoned:
                try:
                    self._settle(jobs, task, attempt)
                except PASSING as exc:
                    with _said_of(attempt):
                        if jobs.failure_pending(claimed.id):
                            logger.warning("job %s: its outcome could not be written (%s); "
                                           "written as the worker stops, or kept for the "
                                           "next start", claimed.id, exc)
                        else:
                            logger.warning("job %s: its outcome could not be written (%s); "
                                           "it stays executing until its lease lapses, then "
                                           "it is recovered and runs again", claimed.id, exc)
                finally:
                    jobs.release_inflight(task.id)

    def running_attempts(self) -> list[Attempt]:
        """The attempts worker threads of this process are running now."""
        with self._attempt_lock:
            return list(self._running.values())

    def abandon(self, attempt: Attempt) -> bool:
        """Take the outcome of a running attempt out of its thread's hands.

        Returns False when the thread is already writing it (too late).
        """
        with self._attempt_lock:
            if attempt.settling or attempt.abandoned:
                return False
            attempt.abandoned = True
            if self._running.get(attempt.claimed.id) is attempt:
                del self._running[attempt.claimed.id]
            return True

    def charge_stuck(self, attempt: Attempt, message: str) -> str | None:
        """Record an abandoned attempt stuck past its timeout; the job's new state, or None.

        The attempt failed by its timeout, as if the timeout had stopped it: retried as
        its task retries a :class:`~runner.errors.TaskTimeout`, else dead (its
        ``on_failure`` called). Not a crash: a crash is a dead worker's, and charging
        one ran the job up to ``crash_limit`` times whatever its retry limit.
        """
        jobs = self.jobs
        assert jobs is not None
        failure = FailureInfo(kind="timeout", error_type="JobStuck", message=message,
                              traceback="", started_at=jobs.clock.to_server(attempt.started_at))
        run_at, data, reason = None, None, f"timeout: {message}"[:500]
        try:
            retry = self._stuck_retry(attempt, message)
            if retry is not None:
                run_at, data = retry
                reason = f"retry at {to_eta(run_at):%H:%M:%S} UTC"
                run_at = jobs.clock.to_server(run_at)
            state = jobs.store.charge_stuck(attempt.claimed.id, attempt.claimed.attempt,
                                            jobs.owner or "local", failure, run_at=run_at,
                                            data=data, reason=reason, now=jobs.clock.now())
        except Exception:
            # Still noted as running, so the recovery of its lapsed lease charges the crash
            # this could not (an attempt not noted would go back uncharged).
            logger.exception("could not record stuck job %s; its lease lapses and it is "
                             "recovered", attempt.claimed.id)
            return None
        finally:
            jobs.release_inflight(attempt.claimed.id)
        jobs.attempt_settled(attempt.claimed.id)
        if state == JobState.RETRYING:
            jobs.wake()
        elif state == JobState.DEAD:
            self.fallbacks_of_buried([attempt.claimed.id])
        return state

    def _stuck_retry(self, attempt: Attempt, message: str) -> tuple[float, bytes] | None:
        """When and as what a stuck attempt's job runs again, as huey retries a task that
        raised :class:`~runner.errors.TaskTimeout`; None when its task does not retry it."""
        task = attempt.task
        if not isinstance(task, RunnerTask) or not task.retries:
            return None
        if not task.wrapper.resolve().policy.should_retry(TaskTimeout(message)):
            return None
        # A copy: the stuck thread still holds the task, should its call ever return.
        again = copy.copy(task)
        again.retries -= 1
        run_at = self._retry_at(again, attempt)
        again.eta = to_eta(run_at)
        return run_at, self.serialize_task(again)

    def _retry_at(self, task: Any, attempt: Attempt) -> float:
        """When a failed attempt's next attempt is due (``time.time()``): the delay given
        for this call (huey's ``.s(retry_delay=...)``) wins over the task's policy."""
        if task.retry_delay:
            run_at = time.time() + task.retry_delay
            if task.retry_backoff:
                task.retry_delay *= task.retry_backoff
            return run_at
        policy = task.wrapper.resolve().policy
        return time.time() + backoff_delay(policy, max(1, attempt.claimed.attempt))

    def _no_revocations_for(self, task_id: str | None) -> bool:
        """True inside the attempt of ``task_id`` when its claim saw no revocation at all.

        huey reads (and afterwards deletes) the revocation of every job it runs; a
        claim already looked, so the worker skips both when the attempt starts right
        after its claim. A job that waited in the prefetch buffer reads, since another
        process may have revoked it meanwhile (a revoke in this process sets the flag).
        """
        attempt: Attempt | None = getattr(_local, "attempt", None)
        jobs = self.jobs
        return (attempt is not None and jobs is not None and attempt.claimed.id == task_id
                and not jobs._revocations
                and attempt.started_at - attempt.claimed.started_at < _FRESH_CLAIM)

    def _attempt_of(self, task_id: str | None) -> Attempt | None:
        """The attempt this thread runs, if it is of ``task_id`` (on the jobs table)."""
        attempt: Attempt | None = getattr(_local, "attempt", None)
        if attempt is None or attempt.claimed.id != task_id or self.jobs is None:
            return None
        return attempt

    def is_revoked(self, task: Any, timestamp: datetime.datetime | None = None,
                   peek: bool = True) -> bool:
        task_id = getattr(task, "id", None)
        if not peek and self._no_revocations_for(task_id):
            return False
        attempt = None if peek else self._attempt_of(task_id)
        if attempt is None:
            return self._read_revocations(task, timestamp, peek)
        return self._revoked_before_start(attempt, task, timestamp)

    def _read_revocations(self, task: Any, timestamp: datetime.datetime | None,
                          peek: bool) -> bool:
        """huey's ``is_revoked``, whose clear of a used-up or ended revocation removes
        only one written before the read: another process may revoke the job again
        between the read and the clear, and that revoke must stand."""
        jobs = self.jobs
        if jobs is None:
            return super().is_revoked(task, timestamp, peek)
        read_at = None if peek else jobs.clock.now()
        keys = self._revoke_keys(task)
        data = self.storage.peek_many(keys)
        for key in keys:
            revoked, restore = self._check_revoked(data.get(key, EmptyData), timestamp, peek)
            if restore and read_at is not None:
                self._clear_revocation(key, read_at)
            if revoked:
                return True
        return False

    def _revoked_before_start(self, attempt: Attempt, task: Any,
                              timestamp: datetime.datetime | None) -> bool:
        """huey's check that a job about to start was not revoked, read until the
        database answers.

        The job may have been revoked, so it cannot start unread; and the database
        being away is no failure of the job. It waits, still claimed (its lease
        extended by the heartbeat), its timeout not yet running; a shutdown hands it
        back meanwhile, and a cancel ends it.
        """
        delay = _REREAD_FIRST
        while True:
            try:
                revoked = self._read_revocations(task, timestamp, False)
                break
            except PASSING as exc:
                if delay == _REREAD_FIRST:
                    attempt.deadline = None  # the stall check must not count the wait
                    logger.warning("job %s waits to start: whether it was revoked cannot be "
                                   "read (%s); it starts once the database answers",
                                   attempt.claimed.id, exc)
            time.sleep(delay)
            delay = min(delay * 2, _REREAD_MAX)
            timestamp = None  # a revocation's end is judged when it is read
            if attempt.abandoned:
                raise _NotStarted
            if attempt.interrupt.requested:
                attempt.outcome = JobState.CANCELLED
                attempt.reason = attempt.interrupt.message()
                raise _NotStarted
        if delay != _REREAD_FIRST and attempt.timeout is not None:
            attempt.deadline = time.monotonic() + attempt.timeout
            if self.on_deadline is not None:
                self.on_deadline(attempt.deadline)
        return revoked

    def delete(self, key: str) -> bool:
        if key.startswith("r:"):
            if self._no_revocations_for(key[2:]):
                return False
            jobs = self.jobs
            if jobs is not None and self._attempt_of(key[2:]) is not None:
                # huey clears the job's revocation after each attempt: the ones written
                # until now, not one another process writes while this clear waits.
                return self._clear_revocation(key, jobs.clock.now())
        return super().delete(key)

    def _clear_revocation(self, key: str, written_by: float) -> bool:
        """Delete the revocation ``key`` if written no later than ``written_by`` (the
        server's time the clear was decided at); a newer one stays."""
        jobs = self.jobs
        assert jobs is not None
        if not key.startswith("r:") or self._attempt_of(key[2:]) is None:
            return jobs.delete_revocation(key, written_by)
        # The job's own revocation, cleared before its next run (after each attempt and
        # as its one-time revocation is read): what the attempt did stands whether the
        # database answers now or with a later claim.
        try:
            return jobs.delete_revocation(key, written_by)
        except PASSING as exc:
            logger.warning("job %s: its revocation is cleared with a later write (%s)",
                           key[2:], exc)
            jobs.delete_later(key, written_by)
            return False

    def _emit(self, signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        if attempt is not None and attempt.claimed.id == getattr(task, "id", None):
            started = attempt.started_at
            if signal == S.SIGNAL_ERROR and args:
                attempt.exception = args[0]
                attempt.failure = describe_failure(args[0], "error", started)
            elif signal in _ERROR_SIGNALS:
                exc = sys.exc_info()[1]
                if exc is not None:
                    attempt.exception = exc
                    attempt.failure = describe_failure(exc, _ERROR_SIGNALS[signal], started)
                if signal == S.SIGNAL_CANCELED:
                    attempt.outcome, attempt.reason = JobState.CANCELLED, (
                        attempt.interrupt.message() if attempt.interrupt.requested
                        else f"cancelled by the task: {exc}" if isinstance(exc, JobCancelled)
                        else "cancelled before running")
            elif signal == S.SIGNAL_COMPLETE:
                if not attempt.interrupt.requested:
                    attempt.outcome = JobState.COMPLETED
            elif signal in (S.SIGNAL_REVOKED, S.SIGNAL_EXPIRED):
                attempt.outcome = JobState.CANCELLED
                attempt.reason = "revoked" if signal == S.SIGNAL_REVOKED else "expired"
            elif signal == S.SIGNAL_INTERRUPTED:
                attempt.outcome = "interrupted"
        super()._emit(signal, task, *args, **kwargs)

    def _requeue_task(self, task: Any, timestamp: datetime.datetime,
                      retry_eta: datetime.datetime | None = None) -> None:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        jobs = self.jobs
        if attempt is None or jobs is None or attempt.claimed.id != task.id:
            return super()._requeue_task(task, timestamp, retry_eta)
        with self._attempt_lock:
            if attempt.abandoned:
                return None
            # Written from inside the attempt: a shutdown handing the job back meanwhile
            # would let this land on the next run of the same attempt number.
            attempt.settling = True
        task.retries -= 1
        if retry_eta is not None:
            run_at = to_timestamp(retry_eta)
        else:
            run_at = self._retry_at(task, attempt)
        task.eta = to_eta(run_at)
        failure = attempt.failure or FailureInfo(
            kind="retry", error_type=type(attempt.exception).__name__ if attempt.exception
            else "Retry", message=error_text(attempt.exception) if attempt.exception
            else "retry requested",
            traceback="", started_at=attempt.started_at)
        try:
            jobs.fail(task.id, attempt.claimed.attempt, failure, state=JobState.RETRYING,
                      run_at=run_at, data=self.serialize_task(task),
                      reason=f"retry at {to_eta(run_at):%H:%M:%S} UTC",
                      results=attempt.results)
        except PASSING as exc:
            # Not buried in its place: the job still has retries. Left executing, it is
            # recovered once its lease lapses and runs again.
            attempt.settled = True
            logger.warning("job %s: its failed attempt could not be written (%s); it stays "
                           "executing until its lease lapses, then it is recovered and "
                           "runs again", task.id, exc)
            return None
        attempt.settled = True
        self._emit(S.SIGNAL_SCHEDULED if run_at > time.time() else S.SIGNAL_ENQUEUED, task)
        logger.info("job %s (%s) retries in %.2fs, %s retries left", task.id,
                    task.wrapper.task_name, run_at - time.time(), task.retries)

    def _get_timestamp(self) -> datetime.datetime:
        jobs = self.jobs
        # What huey judges by it (a job's expiry, a revocation's end) other hosts wrote,
        # by the server's clock. With no offset (SQLite, or clocks that agree) huey's own
        # reading is the same time, at a fraction of the cost: this runs for every job.
        if jobs is None or not jobs.clock.offset:
            return super()._get_timestamp()  # type: ignore[misc]
        return to_eta(jobs.clock.now())

    def ready_to_run(self, task: Any, timestamp: datetime.datetime | None = None) -> bool:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        if attempt is not None and attempt.claimed.id == getattr(task, "id", None):
            # The claim found it due by the server's clock, which every host shares; the
            # ETA in its message is the clock of whichever host wrote it.
            return True
        return super().ready_to_run(task, timestamp)

    def add_schedule(self, task: Any) -> None:
        jobs = self.jobs
        if jobs is not None and isinstance(task, RunnerTask):
            self.enqueue(task)
            return
        super().add_schedule(task)

    def hand_back_running(self) -> dict[HandBack, list[str]]:
        """At shutdown, once the drain is over: hand back the jobs still running, their
        attempt not used; the ids by what the store did with each (a job whose cancel
        was asked is cancelled instead, as asked: handed back, it would run again).

        The next claim runs the same attempt again, so this process gives each one up
        first (:meth:`abandon`): an outcome it wrote later would land on that run. One
        already writing its outcome is left to it. Until this is called an attempt that
        ends still writes its outcome (huey's promise after ``notify_interrupted_tasks``).
        A job already past its timeout is stuck in a call the timeout could not
        interrupt (or it caught the timeout): its attempt fails by its timeout instead
        (:meth:`charge_stuck`), retried only as its task retries a timeout; handed back,
        it would run again untried and stick again at every start.
        """
        jobs = self.jobs
        handed: dict[HandBack, list[str]] = {}
        if jobs is None:
            return handed
        for attempt in self.running_attempts():
            if not self.abandon(attempt):
                continue
            job_id = attempt.claimed.id
            over = attempt.overrun()
            if over is not None:
                self.charge_stuck(attempt, stuck_message(attempt, over, "at shutdown"))
                continue
            try:
                done = jobs.finish(job_id, attempt.claimed.attempt, JobState.AVAILABLE,
                                   "handed back at shutdown")
                if done is not None:
                    handed.setdefault(done, []).append(job_id)
            except DatabaseLocked:
                raise  # every later write would wait out the lock too: the caller stops
            except Exception:
                logger.exception("could not hand back job %s; recovered at next start", job_id)
            finally:
                jobs.release_inflight(job_id)
        return handed

    def _settle(self, jobs: JobStorage, task: Any, attempt: Attempt) -> None:
        if attempt.settled:
            return
        job_id = attempt.claimed.id
        if attempt.outcome == JobState.COMPLETED or (
                attempt.outcome is None and attempt.failure is None and attempt.escaped is None):
            jobs.ack_completed(job_id, attempt.claimed.attempt, started_at=attempt.started_at,
                               results=attempt.results, jobs=attempt.follow_ups)
        elif attempt.outcome == "interrupted":
            jobs.finish(job_id, attempt.claimed.attempt, JobState.AVAILABLE, "interrupted",
                        results=attempt.results)
        elif attempt.outcome == JobState.CANCELLED:
            jobs.finish(job_id, attempt.claimed.attempt, JobState.CANCELLED, attempt.reason,
                        results=attempt.results)
        elif attempt.failure is not None:
            jobs.fail(job_id, attempt.claimed.attempt, attempt.failure, state=JobState.DEAD,
                      reason=f"{attempt.failure.kind}: {attempt.failure.message}"[:500],
                      results=attempt.results, jobs=attempt.follow_ups)
            with _said_of(attempt):
                logger.error("job %s (%s) is dead after %d attempt(s): %s", job_id,
                             getattr(getattr(task, "wrapper", None), "task_name", task.name),
                             attempt.claimed.attempt, attempt.failure.message)
            self._run_fallback(task, attempt)
        else:
            self._settle_unknown(jobs, task, attempt)

    def _settle_unknown(self, jobs: JobStorage, task: Any, attempt: Attempt) -> None:
        """huey's own bookkeeping failed after the task ran: the attempt fails.

        It is retried while the task has retries left, as any failed attempt is; a
        failure that comes back at every attempt (a pipeline step that cannot be
        made from the result) ran the task again without end before.
        """
        exc = attempt.escaped
        assert exc is not None
        failure = describe_failure(exc, "error", attempt.started_at)
        reason = f"outcome not recorded: {type(exc).__name__}: {failure.message}"[:500]
        job_id = attempt.claimed.id
        data = None
        retries = getattr(task, "retries", None) or 0
        if retries > 0:
            task.retries = retries - 1
            try:
                data = self.serialize_task(task)
            except Exception:
                logger.exception("job %s: cannot write its retry", job_id)
        if data is None:
            with _said_of(attempt):
                logger.error("job %s: recording its outcome failed (%s: %s); it is dead after "
                             "%d attempt(s)", job_id, type(exc).__name__, failure.message,
                             attempt.claimed.attempt)
            jobs.fail(job_id, attempt.claimed.attempt, failure, state=JobState.DEAD,
                      reason=reason)
            attempt.failure = failure
            self._run_fallback(task, attempt)
            return
        with _said_of(attempt):
            logger.error("job %s: recording its outcome failed (%s: %s); it runs again",
                         job_id, type(exc).__name__, failure.message)
        jobs.fail(job_id, attempt.claimed.attempt, failure, state=JobState.RETRYING,
                  run_at=time.time() + backoff_delay(task.wrapper.resolve().policy,
                                                     max(1, attempt.claimed.attempt))
                  if isinstance(task, RunnerTask) else time.time(),
                  data=data, reason=reason)

    def _run_fallback(self, task: Any, attempt: Attempt) -> None:
        if attempt.failure is not None:
            self._call_fallback(task, attempt.failure.error_type, attempt.failure.message,
                                attempt.failure.traceback, attempt.claimed.attempt)

    def fallbacks_of_buried(self, job_ids: list[str]) -> None:
        """Call the ``on_failure`` of jobs buried outside an attempt's own thread: their
        worker died, or they were stuck, ``crash_limit`` times (the last crash is the error).

        A task this worker does not register has no fallback to call here.
        """
        jobs = self.jobs
        if jobs is None:
            return
        for job_id in job_ids:
            try:
                row = jobs.store.get_job(job_id)
                wrapper = self.task_registry.find(row.task)
                if wrapper is None or wrapper.on_failure is None:
                    continue
                payload = jobs.store.job_payload(job_id)
                if payload is None:
                    continue
                task = self.deserialize_task(payload)
                errors = jobs.store.job_errors(job_id)
            except Exception:
                logger.exception("cannot call the on_failure of dead job %s", job_id)
                continue
            last = errors[-1] if errors else None
            self._call_fallback(task, last.error_type if last else None,
                                last.message if last else row.reason,
                                last.traceback if last else None, row.attempt)

    def _call_fallback(self, task: Any, error_type: str | None, error: str | None,
                       traceback: str | None, attempts: int) -> None:
        wrapper = getattr(task, "wrapper", None)
        fallback = getattr(wrapper, "on_failure", None)
        if fallback is None:
            return
        failure = Failure(job_id=task.id, task=wrapper.task_name, args=tuple(task.args),
                          kwargs=dict(task.kwargs), error_type=error_type or "",
                          error=error or "", traceback=traceback or "", attempts=attempts)
        try:
            fallback(failure)  # a task wrapper enqueues it; a plain function runs here
        except Exception:
            logger.exception("on_failure fallback of %s failed", wrapper.task_name)

    def run_one(self) -> bool:
        """Claim one due job and run it in this thread; False when none is due."""
        jobs = self.jobs
        if jobs is None:
            return False
        claimed = jobs.claim_due(1)
        if not claimed:
            jobs.flush_acks()
            return False
        task = self._read_claimed(jobs, claimed[0])
        if task is None:
            return True
        _local.claimed = claimed[0]
        try:
            self.execute(task)
        except SerializationError:
            pass  # a result the serializer cannot carry: the job is already dead with the reason
        jobs.flush_acks()
        return True
