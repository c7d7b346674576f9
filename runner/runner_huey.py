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

import copy
import datetime
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from huey import signals as S
from huey.api import Huey, Result, ResultGroup, Task, chord, group
from huey.serializer import Serializer
from huey.storage import BaseStorage
from huey.utils import Error

from runner.arguments import preview_args, unserializable
from runner.attempt import (
    Attempt,
    CurrentJob,
    ThreadWrittenOff,
    _local,
    current_job,
    describe_failure,
    on_attempt_end,
    pipeline_ids,
    run_attempt_end_hooks,
    stuck_message,
)
from runner.bulk import MapResults, map_jobs
from runner.config import Settings, load_settings
from runner.errors import JobCancelled, SerializationError
from runner.huey_api import HueyApi
from runner.ids import new_ids
from runner.result import RunnerResult
from runner.retry import backoff_delay
from runner.serializers import UnsupportedValue, make_serializer, message_encoder
from runner.store.job_rows import Claimed, FailureInfo, NewJob
from runner.store.job_storage import JobStorage
from runner.store.states import JobState
from runner.task import Failure, RunnerTask, RunnerTaskWrapper, TaskRegistry

logger = logging.getLogger(__name__)

#: Seconds after its claim within which an attempt trusts the claim's revocation check.
_FRESH_CLAIM = 0.05
_ERROR_SIGNALS = {S.SIGNAL_TIMEOUT: "timeout", S.SIGNAL_LOCKED: "locked",
                  S.SIGNAL_RATE_LIMITED: "rate_limited",
                  S.SIGNAL_CANCELED: JobState.CANCELLED.value}


def to_timestamp(eta: datetime.datetime) -> float:
    """huey keeps ETAs as naive UTC datetimes; the jobs table keeps epoch seconds."""
    if eta.tzinfo is None:
        eta = eta.replace(tzinfo=datetime.UTC)
    return eta.timestamp()


def to_eta(timestamp: float) -> datetime.datetime:
    """Epoch seconds as huey's naive UTC datetime."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).replace(tzinfo=None)


class RunnerHuey(HueyApi, Huey):
    """huey over the jobs table; settings and storage are opened on first use."""

    def __init__(self, name: str = "runner", settings: Settings | None = None) -> None:
        self._settings = settings
        self._storage: BaseStorage | None = None
        self._storage_lock = threading.Lock()
        self._running: dict[str, Attempt] = {}
        self._attempt_lock = threading.Lock()
        #: The serializer and its Message encoder (:meth:`serialize_checked`).
        self._encoder: tuple[Serializer, Callable[[tuple], bytes]] | None = None
        self.task_registry = TaskRegistry()
        """Every task defined on this runner (``runner.registry.registered_tasks``)."""
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

    @property
    def serializer(self) -> Serializer:
        """Payloads and results: ``[runner] serializer`` ("pickle" or "json")."""
        kind = self.settings.runner.serializer
        serializer = self._serializers.get(kind)
        if serializer is None:
            serializer = self._serializers[kind] = make_serializer(kind)
        return serializer

    @serializer.setter
    def serializer(self, value: Serializer) -> None:
        # huey's __init__ sets its own pickle serializer; ours is chosen by settings.
        self._serializers: dict[str, Serializer] = {}

    def create_storage(self) -> BaseStorage | None:
        if self._immediate and self.immediate_use_memory:
            return self.get_immediate_storage()
        return None  # opened lazily by the storage property

    @property
    def storage(self) -> BaseStorage:
        if self._storage is None:
            with self._storage_lock:
                if self._storage is None:
                    storage = JobStorage(self.name, settings=self.settings)
                    storage.limits_source = self.task_registry.flow_limits
                    self._storage = storage
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
        attempt = self._completed_here()
        if attempt is None or task.id not in attempt.pipeline:
            task = self.insert_task(jobs, task)
        # else: the next step of the pipeline this thread just completed, written
        # with that completion (see _run_post_execute).
        written = task.duplicate_of is None  # a unique job's duplicate wrote nothing
        if written and self._listened(S.SIGNAL_ENQUEUED):
            self._emit(S.SIGNAL_ENQUEUED, task)
        if (written and task.eta is not None and self._listened(S.SIGNAL_SCHEDULED)
                and to_timestamp(task.eta) > time.time()):
            self._emit(S.SIGNAL_SCHEDULED, task)
        if not self.results:
            return None
        results = self._pipeline_results(task)
        return ResultGroup(results) if len(results) > 1 else results[0]

    def enqueue_many(self, tasks: Iterable[Any], *, batch_size: int = 1000) -> list[Result]:
        """Enqueue many task calls (``my_task.s(...)``), one transaction per batch.

        Every call is checked to serialize before anything is written; a call that
        does not is named by its position and nothing is enqueued. Each batch is
        written whole or not at all: a queue bound (``queue_size``) or a unique key
        that refuses a batch leaves the earlier batches enqueued and says how many.

        Raises:
            SerializationError: a call's arguments cannot be serialized (nothing written).
            QueueFull: a batch would overfill a queue (earlier batches stay enqueued).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        items = list(tasks)
        for position, task in enumerate(items):
            if not isinstance(task, RunnerTask):
                raise TypeError(f"enqueue_many item {position}: expected a task call such as "
                                f"my_task.s(...), got {type(task).__name__}; nothing was "
                                "enqueued")
        if self._immediate or self.jobs is None:
            return [self.enqueue(task) for task in items]
        new = []
        for position, task in enumerate(items):
            try:
                new.append(self.new_job(task))
            except SerializationError as exc:
                raise SerializationError(f"enqueue_many item {position}: {exc}") from None
        duplicates = self.jobs.insert_many(new, batch_size=batch_size).duplicates
        for task in items:
            if task.id in duplicates:
                task.duplicate_of = task.id = duplicates[task.id]
                task.revoke_id = f"r:{task.id}"
        if self._listened(S.SIGNAL_ENQUEUED):
            for task in items:
                if task.duplicate_of is None:
                    self._emit(S.SIGNAL_ENQUEUED, task)
        return [self._result_handle(task) for task in items]

    def map_calls(self, wrapper: RunnerTaskWrapper, calls: Sequence[tuple], *,
                  batch_size: int = 1000) -> Sequence[Result]:
        """Enqueue ``wrapper`` called with each of ``calls`` (``task.map()``).

        As :meth:`enqueue_many` of ``wrapper.s(*call)`` for each call, without a Task
        per job: see :mod:`runner.bulk`. Returns one Result per call, in order, each
        made when it is read.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        ids = new_ids(len(calls))
        jobs = None if self._immediate else self.jobs
        if jobs is None or not calls or self._listened(S.SIGNAL_ENQUEUED):
            make = wrapper.task_class  # signal receivers are handed each job's Task
            return self.enqueue_many([make(args, {}, id=ident)
                                      for args, ident in zip(calls, ids, strict=True)],
                                     batch_size=batch_size)
        prototype = wrapper.task_class((), {}, id=ids[0])
        wrapper.prepare(prototype)
        if prototype.expires:
            prototype.resolve_expires(self.utc)
        serializer = self.serializer
        new = map_jobs(wrapper, prototype, self._registry.create_message(prototype), calls,
                       ids, message_encoder(serializer), serializer.serialize)
        duplicates = jobs.insert_many(new, batch_size=batch_size).duplicates
        return MapResults(self._result_handle, prototype, calls, ids, duplicates)

    def _listened(self, signal: str) -> bool:
        """Whether any receiver would hear ``signal`` (producers skip building the call)."""
        receivers = self._signal.receivers
        return bool(receivers.get(signal) or receivers.get("any"))

    def new_job(self, task: RunnerTask) -> NewJob:
        """The row for a task: options resolved, arguments checked to serialize."""
        task.wrapper.prepare(task)
        if task.expires:
            task.resolve_expires(self.utc)
        data = self.serialize_checked(task)
        flow = task.wrapper.flow
        unique = task.wrapper.unique
        unique_key = task.unique_key
        if unique is not None and unique_key is None:
            unique_key = unique.key_for(task.wrapper.task_name, task.args, task.kwargs)
        return NewJob(
            id=task.id, task=task.wrapper.task_name, queue=task.queue or "default",
            priority=int(task.priority or 0), data=data, args=preview_args(task.args, task.kwargs),
            max_attempts=int(task.retries or 0) + 1,
            run_at=to_timestamp(task.eta) if task.eta else time.time(),
            unique_key=unique_key, event_id=task.event_id, schedule=task.schedule_name,
            concurrency_key=flow.key_of(task.args, task.kwargs) if flow is not None else None,
            unique_for=unique.unique_for if unique is not None else None,
            unique_states=unique.states if unique is not None else ())

    def put_result(self, key: str, data: Any) -> Any:
        try:
            return self._put_result(key, data)
        except UnsupportedValue as exc:
            # The JSON serializer cannot carry this result: the job fails with the reason
            # (and the waiting caller gets it) instead of completing without its result.
            error = SerializationError(f"the result of job {key} cannot be stored: {exc}")
            attempt: Attempt | None = getattr(_local, "attempt", None)
            if attempt is not None and attempt.claimed.id == key:
                attempt.exception = error
                attempt.failure = describe_failure(error, "error", attempt.started_at)
            self._put_result(key, Error({"error": repr(error), "retries": 0, "traceback": "",
                                         "task_id": key}))
            raise error from None

    def _put_result(self, key: str, data: Any) -> Any:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        if self.jobs is not None and attempt is not None and key in attempt.pipeline:
            # The job's result (or the error of each pipeline step): written with its outcome.
            attempt.results.append((key, self.serializer.serialize(data)))
            return None
        return super().put_result(key, data)

    def _completed_here(self) -> Attempt | None:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        return attempt if attempt is not None and attempt.outcome == JobState.COMPLETED else None

    def _run_post_execute(self, task: Any, task_value: Any, exception: Any) -> None:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        jobs = self.jobs
        if (exception is None and attempt is not None and jobs is not None
                and attempt.claimed.id == getattr(task, "id", None)
                and attempt.interrupt.requested):
            # Cooperative code saw the cancel and returned: the job ends cancelled.
            attempt.outcome, attempt.reason = JobState.CANCELLED, attempt.interrupt.message()
        elif (exception is None and attempt is not None and jobs is not None
                and attempt.claimed.id == getattr(task, "id", None) and not attempt.abandoned):
            # Success: the completion, the result and the next pipeline step go in one
            # transaction now, before SIGNAL_COMPLETE, so its receivers can read them.
            follow_ups = []
            if task.on_complete is not None:
                step = copy.copy(task.on_complete)  # huey extends the original after us
                step.extend_data(task_value)
                follow_ups.append(self.new_job(step))
            jobs.ack_completed(attempt.claimed.id, attempt.claimed.attempt,
                               started_at=attempt.started_at, results=attempt.results,
                               jobs=follow_ups)
            attempt.outcome, attempt.settled = JobState.COMPLETED, True
        super()._run_post_execute(task, task_value, exception)

    def serialize_checked(self, task: RunnerTask) -> bytes:
        """Serialize a task, or say which argument cannot be; nothing is written."""
        serializer = self.serializer
        cached = self._encoder
        if cached is None or cached[0] is not serializer:
            cached = self._encoder = (serializer, message_encoder(serializer))
        try:
            # huey's serialize_task, with the Message's fields pickled as a plain tuple:
            # the same payload for a third of the pickling (see message_encoder).
            return cached[1](tuple(self._registry.create_message(task)))
        except Exception as exc:
            raise unserializable(task.wrapper.task_name, task.args, task.kwargs, exc,
                                 self.serializer.serialize) from None

    # -- consuming -------------------------------------------------------------

    def dequeue(self) -> RunnerTask | None:
        jobs = self.jobs
        if jobs is None:
            return super().dequeue()
        if jobs.is_retired(threading.get_ident()):
            raise ThreadWrittenOff
        claimed = jobs.claim_next()
        if claimed is None:
            return None
        try:
            task = self.deserialize_task(claimed.data)
        except Exception as exc:
            reason = f"cannot read job: {type(exc).__name__}: {exc}"
            logger.error("job %s is unreadable and goes to dead: %s", claimed.id, reason)
            jobs.fail(claimed.id, claimed.attempt, describe_failure(exc, "unreadable", None),
                      state=JobState.DEAD, reason=reason)
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
        cancelled_by = jobs.take_cancel(claimed.id)
        if cancelled_by is not None:  # cancelled while it waited in this process
            try:
                jobs.finish(claimed.id, JobState.CANCELLED,
                            f"cancelled by {cancelled_by} before it started")
            finally:
                jobs.release_inflight(claimed.id)
            return None
        attempt = Attempt(claimed, started_at=time.time(), thread=threading.current_thread(),
                          pipeline=frozenset(pipeline_ids(task)))
        attempt.current = CurrentJob(
            claimed.id, getattr(getattr(task, "wrapper", None), "task_name", task.name),
            claimed.attempt, attempt.started_at, attempt.interrupt)
        timeout = getattr(task, "timeout", None)
        if timeout:
            attempt.timeout = float(timeout)
            attempt.deadline = time.monotonic() + attempt.timeout
        _local.attempt = attempt
        with self._attempt_lock:
            self._running[claimed.id] = attempt
        jobs.attempt_started(claimed.id, claimed.attempt)
        try:
            return super().execute(task, timestamp)
        except BaseException as exc:
            attempt.escaped = exc
            raise
        finally:
            run_attempt_end_hooks(attempt.current)
            _local.attempt = None
            with self._attempt_lock:
                if self._running.get(claimed.id) is attempt:
                    del self._running[claimed.id]
                attempt.settling = True
            if not attempt.abandoned:
                try:
                    self._settle(jobs, task, attempt)
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
        """Record an abandoned attempt as stuck (a crash); the job's new state, or None."""
        jobs = self.jobs
        assert jobs is not None
        try:
            return jobs.store.charge_stuck(attempt.claimed.id, attempt.claimed.attempt,
                                           jobs.owner or "local", message,
                                           crash_limit=self.settings.worker.crash_limit)
        except Exception:
            logger.exception("could not record stuck job %s; its lease lapses and it is "
                             "recovered", attempt.claimed.id)
            return None
        finally:
            jobs.release_inflight(attempt.claimed.id)
            jobs.attempt_settled(attempt.claimed.id)

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
        if attempt.abandoned:
            return None
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
        jobs.fail(task.id, attempt.claimed.attempt, failure, state=JobState.RETRYING,
                  run_at=run_at, data=self.serialize_task(task),
                  reason=f"retry at {to_eta(run_at):%H:%M:%S} UTC", results=attempt.results)
        attempt.settled = True
        self._emit(S.SIGNAL_SCHEDULED if run_at > time.time() else S.SIGNAL_ENQUEUED, task)
        logger.info("job %s (%s) retries in %.2fs, %s retries left", task.id,
                    task.wrapper.task_name, run_at - time.time(), task.retries)

    def add_schedule(self, task: Any) -> None:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        jobs = self.jobs
        if attempt is not None and jobs is not None and attempt.claimed.id == task.id:
            if attempt.abandoned:
                return
            # Claimed before its ETA (clocks of two hosts disagree): put it back unstarted.
            jobs.release(task.id, to_timestamp(task.eta))
            attempt.settled = True
            return
        if jobs is not None and isinstance(task, RunnerTask):
            self.enqueue(task)
            return
        super().add_schedule(task)

    def notify_interrupted_tasks(self) -> None:
        """At shutdown: jobs still running are handed back, their attempt counted.

        A job already past its timeout is stuck in a call the timeout could not
        interrupt: it is charged a crash instead, or it would be claimed (alone,
        as a suspect) and stick again at every start.
        """
        jobs = self.jobs
        in_flight = list(self._tasks_in_flight)
        super().notify_interrupted_tasks()
        if jobs is None:
            return
        running = {a.claimed.id: a for a in self.running_attempts()}
        for task in in_flight:
            attempt = running.get(task.id)
            over = attempt.overrun() if attempt is not None else None
            if attempt is not None and over is not None:
                if self.abandon(attempt):
                    self.charge_stuck(attempt, stuck_message(attempt, over, "at shutdown"))
                continue
            if attempt is not None and attempt.abandoned:
                continue
            try:
                jobs.finish(task.id, JobState.AVAILABLE, "handed back at shutdown")
            except Exception:
                logger.exception("could not hand back job %s; recovered at next start", task.id)

    def _settle(self, jobs: JobStorage, task: Any, attempt: Attempt) -> None:
        if attempt.settled:
            return
        job_id = attempt.claimed.id
        if attempt.outcome == JobState.COMPLETED or (
                attempt.outcome is None and attempt.failure is None and attempt.escaped is None):
            jobs.ack_completed(job_id, attempt.claimed.attempt, started_at=attempt.started_at,
                               results=attempt.results, jobs=attempt.follow_ups)
        elif attempt.outcome == "interrupted":
            jobs.finish(job_id, JobState.AVAILABLE, "interrupted", results=attempt.results)
        elif attempt.outcome == JobState.CANCELLED:
            jobs.finish(job_id, JobState.CANCELLED, attempt.reason, results=attempt.results)
        elif attempt.failure is not None:
            jobs.fail(job_id, attempt.claimed.attempt, attempt.failure, state=JobState.DEAD,
                      reason=f"{attempt.failure.kind}: {attempt.failure.message}"[:500],
                      results=attempt.results, jobs=attempt.follow_ups)
            logger.error("job %s (%s) is dead after %d attempt(s): %s", job_id,
                         getattr(getattr(task, "wrapper", None), "task_name", task.name),
                         attempt.claimed.attempt, attempt.failure.message)
            self._run_fallback(task, attempt)
        else:
            self._settle_unknown(jobs, task, attempt)

    def _settle_unknown(self, jobs: JobStorage, task: Any, attempt: Attempt) -> None:
        """huey's own bookkeeping failed after the task ran: run the job again."""
        exc = attempt.escaped
        assert exc is not None
        failure = describe_failure(exc, "error", attempt.started_at)
        logger.error("job %s: recording its outcome failed (%s: %s); it runs again",
                     attempt.claimed.id, type(exc).__name__, exc)
        jobs.fail(attempt.claimed.id, attempt.claimed.attempt, failure, state=JobState.RETRYING,
                  run_at=time.time() + backoff_delay(task.wrapper.resolve().policy,
                                                     max(1, attempt.claimed.attempt))
                  if isinstance(task, RunnerTask) else time.time(),
                  reason=f"outcome not recorded: {type(exc).__name__}: {exc}"[:500])

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
                      state=JobState.DEAD, reason=f"cannot read job: {type(exc).__name__}: {exc}")
            jobs.release_inflight(claimed[0].id)
            return True
        _local.claimed = claimed[0]
        try:
            self.execute(task)
        except SerializationError:
            pass  # a result the serializer cannot carry: the job is already dead with the reason
        jobs.flush_acks()
        return True

    # -- results ---------------------------------------------------------------

    def result(self, id: str, blocking: bool = False, timeout: float | None = None,
               backoff: float = 1.15, max_delay: float = 0.1, revoke_on_timeout: bool = False,
               preserve: bool = False) -> Any:
        return RunnerResult(self, Task(id=id)).get(blocking, timeout, backoff, max_delay,
                                                   revoke_on_timeout, preserve)

    def _result_handle(self, task: Any) -> RunnerResult:
        return RunnerResult(self, task)

    def _pipeline_results(self, task: Any) -> list[RunnerResult]:
        results = []
        while task is not None:
            results.append(RunnerResult(self, task))
            task = task.on_complete
        return results


__all__ = ["RunnerHuey", "Result", "to_eta", "to_timestamp", "CurrentJob", "current_job",
           "on_attempt_end", "describe_failure"]
