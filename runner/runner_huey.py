"""The huey instance: huey's consumer, registry, results and signals over our jobs table.

:class:`RunnerHuey` keeps huey's machinery and changes what it lacks:

* enqueue writes a job row (after checking the arguments serialize) and only
  then emits ``SIGNAL_ENQUEUED``;
* dequeue claims with a lease; a row whose task is unknown or whose payload
  cannot be read goes to ``dead`` with the reason, never deleted;
* every outcome (completed, retrying, dead, cancelled, handed back) is written
  to the same row, with the traceback of each failed attempt;
* retries use our backoff policy and stay the same job.
"""

from __future__ import annotations

import datetime
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from huey import signals as S
from huey.api import Huey, Result, ResultGroup, chord, group
from huey.storage import BaseStorage

from runner.arguments import preview_args, unserializable
from runner.config import Settings, load_settings
from runner.huey_api import HueyApi
from runner.retry import backoff_delay
from runner.store.job_rows import Claimed, FailureInfo, NewJob
from runner.store.job_storage import JobStorage
from runner.task import Failure, RunnerTask

logger = logging.getLogger(__name__)

_local = threading.local()
#: Seconds after its claim within which an attempt trusts the claim's revocation check.
_FRESH_CLAIM = 0.05
_ERROR_SIGNALS = {S.SIGNAL_TIMEOUT: "timeout", S.SIGNAL_LOCKED: "locked",
                  S.SIGNAL_RATE_LIMITED: "rate_limited", S.SIGNAL_CANCELED: "cancelled"}


@dataclass
class Attempt:
    """What the worker thread learns about the attempt it is running."""

    claimed: Claimed
    failure: FailureInfo | None = None
    exception: BaseException | None = None
    outcome: str | None = None
    reason: str | None = None
    settled: bool = False
    current: CurrentJob | None = None
    started_at: float = 0.0


@dataclass(frozen=True)
class CurrentJob:
    """The job the calling worker thread is running."""

    id: str
    task: str
    attempt: int
    started_at: float


def current_job() -> CurrentJob | None:
    """The job running in this thread (inside a task), else None."""
    attempt: Attempt | None = getattr(_local, "attempt", None)
    if attempt is None:
        return None
    return attempt.current


#: Called in the worker thread after each attempt, while ``current_job()`` still answers.
_attempt_end_hooks: list[Callable[[CurrentJob], None]] = []


def on_attempt_end(hook: Callable[[CurrentJob], None]) -> Callable[[CurrentJob], None]:
    """Register ``hook(job)`` to run after every attempt (flushes of per-job buffers)."""
    if hook not in _attempt_end_hooks:
        _attempt_end_hooks.append(hook)
    return hook


def _run_attempt_end_hooks(job: CurrentJob | None) -> None:
    if job is None:
        return
    for hook in _attempt_end_hooks:
        try:
            hook(job)
        except Exception:
            logger.exception("end-of-attempt hook %r failed for job %s", hook, job.id)


def to_timestamp(eta: datetime.datetime) -> float:
    """huey keeps ETAs as naive UTC datetimes; the jobs table keeps epoch seconds."""
    if eta.tzinfo is None:
        eta = eta.replace(tzinfo=datetime.UTC)
    return eta.timestamp()


def to_eta(timestamp: float) -> datetime.datetime:
    """Epoch seconds as huey's naive UTC datetime."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).replace(tzinfo=None)


def describe_failure(exc: BaseException, kind: str, started_at: float | None) -> FailureInfo:
    """The recorded form of an exception."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return FailureInfo(kind=kind, error_type=type(exc).__name__, message=str(exc) or repr(exc),
                       traceback=text, started_at=started_at)


class RunnerHuey(HueyApi, Huey):
    """huey over the jobs table; settings and storage are opened on first use."""

    def __init__(self, name: str = "runner", settings: Settings | None = None) -> None:
        self._settings = settings
        self._storage: BaseStorage | None = None
        self._storage_lock = threading.Lock()
        super().__init__(name, results=True, utc=True)

    # -- settings and storage ------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings in force, loaded from settings.toml on first use."""
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def configure(self, settings: Settings) -> None:
        """Use other settings (and so perhaps another database) from now on."""
        with self._storage_lock:
            self._settings = settings
            self._storage = None

    def update_settings(self, settings: Settings) -> None:
        """Swap the settings of a running worker (SIGHUP), keeping its open storage."""
        with self._storage_lock:
            self._settings = settings

    def create_storage(self) -> BaseStorage | None:
        if self._immediate and self.immediate_use_memory:
            return self.get_immediate_storage()
        return None  # opened lazily by the storage property

    @property
    def storage(self) -> BaseStorage:
        if self._storage is None:
            with self._storage_lock:
                if self._storage is None:
                    self._storage = JobStorage(self.name, settings=self.settings)
        return self._storage

    @storage.setter
    def storage(self, value: BaseStorage | None) -> None:
        self._storage = value

    @property
    def jobs(self) -> JobStorage | None:
        """The jobs storage, or None in immediate mode."""
        storage = self.storage
        return storage if isinstance(storage, JobStorage) else None

    # -- producing -------------------------------------------------------------

    def enqueue(self, task: Any) -> Any:
        if isinstance(task, (group, chord)) or self._immediate:
            if isinstance(task, RunnerTask):
                task.wrapper.prepare(task)
            return super().enqueue(task)
        jobs = self.jobs
        if jobs is None or not isinstance(task, RunnerTask):
            return super().enqueue(task)
        task = self.insert_task(jobs, task)
        self._emit(S.SIGNAL_ENQUEUED, task)
        if task.eta is not None and to_timestamp(task.eta) > time.time():
            self._emit(S.SIGNAL_SCHEDULED, task)
        if not self.results:
            return None
        results = self._pipeline_results(task)
        return ResultGroup(results) if len(results) > 1 else results[0]

    def new_job(self, task: RunnerTask) -> NewJob:
        """The row for a task: options resolved, arguments checked to serialize."""
        task.wrapper.prepare(task)
        if task.expires:
            task.resolve_expires(self.utc)
        data = self.serialize_checked(task)
        return NewJob(
            id=task.id, task=task.wrapper.task_name, queue=task.queue or "default",
            priority=int(task.priority or 0), data=data, args=preview_args(task.args, task.kwargs),
            max_attempts=int(task.retries or 0) + 1,
            run_at=to_timestamp(task.eta) if task.eta else time.time(),
            unique_key=task.unique_key, event_id=task.event_id, schedule=task.schedule_name)

    def serialize_checked(self, task: RunnerTask) -> bytes:
        """Serialize a task, or say which argument cannot be; nothing is written."""
        try:
            return self.serialize_task(task)
        except Exception as exc:
            raise unserializable(task.wrapper.task_name, task.args, task.kwargs, exc) from None

    # -- consuming -------------------------------------------------------------

    def dequeue(self) -> RunnerTask | None:
        jobs = self.jobs
        if jobs is None:
            return super().dequeue()
        claimed = jobs.claim_next()
        if claimed is None:
            return None
        try:
            task = self.deserialize_task(claimed.data)
        except Exception as exc:
            reason = f"cannot read job: {type(exc).__name__}: {exc}"
            logger.error("job %s is unreadable and goes to dead: %s", claimed.id, reason)
            jobs.fail(claimed.id, claimed.attempt, describe_failure(exc, "unreadable", None),
                      state="dead", reason=reason)
            jobs.release_inflight(claimed.id)
            return None
        _local.claimed = claimed
        return task

    def execute(self, task: Any, timestamp: datetime.datetime | None = None) -> Any:
        claimed: Claimed | None = getattr(_local, "claimed", None)
        _local.claimed = None
        jobs = self.jobs
        if claimed is None or claimed.id != task.id or jobs is None:
            return super().execute(task, timestamp)
        attempt = Attempt(claimed, started_at=time.time())
        attempt.current = CurrentJob(
            claimed.id, getattr(getattr(task, "wrapper", None), "task_name", task.name),
            claimed.attempt, attempt.started_at)
        _local.attempt = attempt
        try:
            return super().execute(task, timestamp)
        finally:
            _run_attempt_end_hooks(attempt.current)
            _local.attempt = None
            try:
                self._settle(jobs, task, attempt)
            finally:
                jobs.release_inflight(task.id)

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

    def is_revoked(self, task: Any, timestamp: datetime.datetime | None = None,
                   peek: bool = True) -> bool:
        if not peek and self._no_revocations_for(getattr(task, "id", None)):
            return False
        return super().is_revoked(task, timestamp, peek)

    def delete(self, key: str) -> bool:
        if key.startswith("r:") and self._no_revocations_for(key[2:]):
            return False
        return super().delete(key)

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
                    attempt.outcome, attempt.reason = "cancelled", "cancelled before running"
            elif signal == S.SIGNAL_COMPLETE:
                attempt.outcome = "completed"
            elif signal in (S.SIGNAL_REVOKED, S.SIGNAL_EXPIRED):
                attempt.outcome = "cancelled"
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
        task.retries -= 1
        if retry_eta is not None:
            run_at = to_timestamp(retry_eta)
        elif task.retry_delay:  # given for this call (huey's .s(retry_delay=...)): it wins
            run_at = time.time() + task.retry_delay
            if task.retry_backoff:
                task.retry_delay *= task.retry_backoff
        else:
            policy = task.wrapper.resolve().policy
            run_at = time.time() + backoff_delay(policy, max(1, attempt.claimed.attempt))
        task.eta = to_eta(run_at)
        failure = attempt.failure or FailureInfo(
            kind="retry", error_type=type(attempt.exception).__name__ if attempt.exception
            else "Retry", message=str(attempt.exception or "retry requested"),
            traceback="", started_at=attempt.started_at)
        jobs.fail(task.id, attempt.claimed.attempt, failure, state="retrying", run_at=run_at,
                  data=self.serialize_task(task), reason=f"retry at {to_eta(run_at):%H:%M:%S} UTC")
        attempt.settled = True
        self._emit(S.SIGNAL_SCHEDULED if run_at > time.time() else S.SIGNAL_ENQUEUED, task)
        logger.info("job %s (%s) retries in %.2fs, %s retries left", task.id,
                    task.wrapper.task_name, run_at - time.time(), task.retries)

    def add_schedule(self, task: Any) -> None:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        jobs = self.jobs
        if attempt is not None and jobs is not None and attempt.claimed.id == task.id:
            # Claimed before its ETA (clocks of two hosts disagree): put it back unstarted.
            jobs.release(task.id, to_timestamp(task.eta))
            attempt.settled = True
            return
        if jobs is not None and isinstance(task, RunnerTask):
            self.enqueue(task)
            return
        super().add_schedule(task)

    def notify_interrupted_tasks(self) -> None:
        """At shutdown: jobs still running are handed back, their attempt counted."""
        jobs = self.jobs
        in_flight = list(self._tasks_in_flight)
        super().notify_interrupted_tasks()
        if jobs is None:
            return
        for task in in_flight:
            try:
                jobs.finish(task.id, "available", "handed back at shutdown")
            except Exception:
                logger.exception("could not hand back job %s; recovered at next start", task.id)

    def _settle(self, jobs: JobStorage, task: Any, attempt: Attempt) -> None:
        if attempt.settled:
            return
        job_id = attempt.claimed.id
        if attempt.outcome == "completed":
            jobs.ack_completed(job_id, started_at=attempt.started_at)
        elif attempt.outcome == "interrupted":
            jobs.finish(job_id, "available", "interrupted")
        elif attempt.outcome == "cancelled":
            jobs.finish(job_id, "cancelled", attempt.reason)
        elif attempt.failure is not None:
            jobs.fail(job_id, attempt.claimed.attempt, attempt.failure, state="dead",
                      reason=f"{attempt.failure.kind}: {attempt.failure.message}"[:500])
            logger.error("job %s (%s) is dead after %d attempt(s): %s", job_id,
                         getattr(getattr(task, "wrapper", None), "task_name", task.name),
                         attempt.claimed.attempt, attempt.failure.message)
            self._run_fallback(task, attempt)
        else:
            jobs.ack_completed(job_id, started_at=attempt.started_at)

    def _run_fallback(self, task: Any, attempt: Attempt) -> None:
        wrapper = getattr(task, "wrapper", None)
        fallback = getattr(wrapper, "on_failure", None)
        if fallback is None or attempt.failure is None:
            return
        failure = Failure(job_id=task.id, task=wrapper.task_name, args=tuple(task.args),
                          kwargs=dict(task.kwargs), error_type=attempt.failure.error_type,
                          error=attempt.failure.message, traceback=attempt.failure.traceback,
                          attempts=attempt.claimed.attempt)
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
        try:
            task = self.deserialize_task(claimed[0].data)
        except Exception as exc:
            jobs.fail(claimed[0].id, claimed[0].attempt, describe_failure(exc, "unreadable", None),
                      state="dead", reason=f"cannot read job: {type(exc).__name__}: {exc}")
            jobs.release_inflight(claimed[0].id)
            return True
        _local.claimed = claimed[0]
        self.execute(task)
        jobs.flush_acks()
        return True

    # -- results ---------------------------------------------------------------

    def result(self, id: str, blocking: bool = False, timeout: float | None = None,
               backoff: float = 1.15, max_delay: float = 0.1, revoke_on_timeout: bool = False,
               preserve: bool = False) -> Any:
        return super().result(id, blocking, timeout, backoff, max_delay, revoke_on_timeout,
                              preserve)


__all__ = ["RunnerHuey", "Result", "to_eta", "to_timestamp"]
