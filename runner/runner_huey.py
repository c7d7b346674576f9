"""The huey instance: huey's consumer, registry, results and signals over our jobs table.

:class:`RunnerHuey` keeps huey's machinery and changes what it lacks:

* settings and storage are opened on first use (``configure()`` swaps them);
* enqueue writes a job row (after checking the arguments serialize) and only
  then emits ``SIGNAL_ENQUEUED``; ``enqueue_many`` and ``task.map()`` write
  batches;
* a result is written in the transaction that completes its job;
* the consuming side (claims, attempts, outcomes, retries) is
  :class:`runner.huey_consumer.HueyConsumer`'s.
"""

from __future__ import annotations

import copy
import datetime
import logging
import threading
import time
import traceback
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
    _local,
    current_job,
    describe_failure,
    on_attempt_end,
)
from runner.bulk import MapResults, map_jobs
from runner.config import Settings
from runner.envfile import service_environment
from runner.errors import InvalidArgument, JobCancelled, SerializationError
from runner.eta import to_eta, to_timestamp
from runner.huey_api import HueyApi
from runner.huey_consumer import HueyConsumer
from runner.ids import new_ids
from runner.payload_size import payload_limit, payload_too_large
from runner.result import RunnerResult
from runner.serializers import make_serializer, message_encoder
from runner.settings_loader import load_settings
from runner.store.job_rows import NewJob
from runner.store.job_storage import JobStorage
from runner.store.states import JobState
from runner.task import RunnerTask, RunnerTaskWrapper, TaskRegistry

logger = logging.getLogger(__name__)


class RunnerHuey(HueyApi, HueyConsumer, Huey):
    """huey over the jobs table; settings and storage are opened on first use."""

    def __init__(self, name: str = "runner", settings: Settings | None = None) -> None:
        self._settings = settings
        self._storage: BaseStorage | None = None
        self._lock_wait: float | None = None
        self._storage_lock = threading.Lock()
        self._running: dict[str, Attempt] = {}
        self._attempt_lock = threading.Lock()
        #: Called in a worker thread with the ``time.monotonic()`` deadline of each attempt
        #: that has a timeout, as it starts (the worker's lifeline looks at it then).
        self.on_deadline: Callable[[float], None] | None = None
        # (settings, encoder of their serializer, most payload bytes): see serialize_checked.
        self._encoder: tuple[Settings, Callable[[tuple], bytes], int] | None = None
        self.task_registry = TaskRegistry()
        """Every task defined on this runner (``runner.registry.registered_tasks``)."""
        super().__init__(name, results=True, utc=True)

    # -- settings and storage ------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings in force, loaded on first use as the worker and the CLI load them."""
        if self._settings is None:
            # The service's environment file names its settings; a script reading only
            # ./settings.toml would write jobs into a database no worker drains.
            self._settings = load_settings(None, service_environment().environ)
        return self._settings

    def configure(self, settings: Settings, *, lock_wait: float | None = None) -> None:
        """Use other settings (and so perhaps another database) from now on.

        ``lock_wait``: seconds a statement waits for a lock another session of a database
        server holds before it fails (a command a person waits on); None waits as long as
        it is held (see :attr:`runner.store.backend.StoreRequest.lock_wait`).
        """
        with self._storage_lock:
            self._settings = settings
            self._lock_wait = lock_wait
            self._storage = None

    def update_settings(self, settings: Settings) -> None:
        """Swap the settings of a running worker (SIGHUP), keeping its open storage."""
        with self._storage_lock:
            self._settings = settings
            if isinstance(self._storage, JobStorage):
                # Claims read their limits from the storage's settings: [tasks.NAME]
                # and [queues.NAME] limits would otherwise stay those of the start.
                self._storage.settings = settings

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
        self._encoder = None

    def create_storage(self) -> BaseStorage | None:
        if self._immediate and self.immediate_use_memory:
            return self.get_immediate_storage()
        return None  # opened lazily by the storage property

    @property
    def storage(self) -> BaseStorage:
        if self._storage is None:
            with self._storage_lock:
                if self._storage is None:
                    storage = JobStorage(self.name, settings=self.settings,
                                         lock_wait=self._lock_wait)
                    storage.limits_source = self.task_registry.flow_limits
                    self._storage = storage
        return self._storage

    @storage.setter
    def storage(self, value: BaseStorage | None) -> None:
        self._storage = value

    @property
    def jobs(self) -> JobStorage | None:
        """The jobs storage, or None in immediate mode."""
        storage = self._storage if self._storage is not None else self.storage
        return storage if isinstance(storage, JobStorage) else None

    # -- producing -------------------------------------------------------------

    def enqueue(self, task: Any) -> Any:
        if isinstance(task, (group, chord)) or self._immediate:
            if isinstance(task, RunnerTask):  # run inline (immediate mode)
                self._check_inline(task)
            return super().enqueue(task)
        jobs = self.jobs
        if jobs is None or not isinstance(task, RunnerTask):
            return super().enqueue(task)
        attempt: Attempt | None = getattr(_local, "attempt", None)
        if (attempt is None or attempt.outcome != JobState.COMPLETED
                or task.id not in attempt.pipeline):
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
        if task.on_complete is None:
            return RunnerResult(self, task)
        return ResultGroup(self._pipeline_results(task))

    def enqueue_many(self, tasks: Iterable[Any], *, batch_size: int = 1000) -> list[Result]:
        """Enqueue many task calls (``my_task.s(...)``), one transaction per batch.

        Every call is checked to serialize (within ``[worker] max_payload_mb``) before
        anything is written; a call that does not is named by its position and nothing
        is enqueued. Each batch is written whole or not at all: a queue bound
        (``queue_size``) or a unique key that refuses a batch leaves the earlier batches
        enqueued and says how many.

        Raises:
            SerializationError: a call's arguments cannot be serialized (nothing written).
            InvalidArgument: a call the function cannot take, or whose payload is over
                ``[worker] max_payload_mb`` (nothing written).
            QueueFull: a batch would overfill a queue (earlier batches stay enqueued).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        return self._enqueue_calls(list(tasks), batch_size, "enqueue_many")

    def _enqueue_calls(self, items: list[Any], batch_size: int, call: str) -> list[Result]:
        """:meth:`enqueue_many`, its errors naming each item as ``{call} item N of M``
        (counted from 1, as the arguments in them are)."""
        for position, task in enumerate(items, 1):
            if not isinstance(task, RunnerTask):
                raise TypeError(f"{call} item {position} of {len(items)}: expected a task "
                                f"call such as my_task.s(...), got {type(task).__name__}; "
                                "nothing was enqueued")
        if self._immediate:
            # As enqueue_many writes nothing when one call is refused, none of them runs.
            for position, task in enumerate(items, 1):
                try:
                    self._check_inline(task)
                except (SerializationError, InvalidArgument) as exc:
                    raise type(exc)(f"{call} item {position} of {len(items)}: {exc}") from None
            return [super(RunnerHuey, self).enqueue(task) for task in items]
        if self.jobs is None:
            return [self.enqueue(task) for task in items]
        new = []
        for position, task in enumerate(items, 1):
            try:
                new.append(self.new_job(task))
            except (SerializationError, InvalidArgument) as exc:
                raise type(exc)(f"{call} item {position} of {len(items)}: {exc}") from None
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
        for length in {len(args) for args in calls}:
            try:
                wrapper.check_arguments((None,) * length, None)
            except InvalidArgument as exc:
                first = next(n for n, args in enumerate(calls, 1) if len(args) == length)
                raise InvalidArgument(f"map item {first} of {len(calls)}: {exc}") from None
        ids = new_ids(len(calls))
        jobs = None if self._immediate else self.jobs
        if jobs is None or not calls or self._listened(S.SIGNAL_ENQUEUED):
            make = wrapper.task_class  # signal receivers are handed each job's Task
            return self._enqueue_calls([make(args, {}, id=ident)
                                        for args, ident in zip(calls, ids, strict=True)],
                                       batch_size, "map")
        prototype = wrapper.task_class((), {}, id=ids[0])
        wrapper.prepare(prototype)
        if prototype.expires:
            self._resolve_expires(prototype)
        serializer = self.serializer
        new = map_jobs(wrapper, prototype, self._registry.create_message(prototype), calls,
                       ids, message_encoder(serializer), serializer.serialize,
                       self.settings.worker.max_payload_mb)
        duplicates = jobs.insert_many(new, batch_size=batch_size).duplicates
        return MapResults(self._result_handle, prototype, calls, ids, duplicates)

    def _check_inline(self, task: RunnerTask) -> None:
        """Check a call run inline as an enqueue checks it, though nothing is written: a
        call production refuses must not pass a test in immediate mode. So it is
        serialized as for its row, once, to measure it against ``[worker]
        max_payload_mb`` (immediate mode only: an enqueue serializes for the row anyway).

        Raises:
            InvalidArgument: an option out of range, a call the function cannot take, or
                a payload over ``[worker] max_payload_mb``.
            SerializationError: an argument cannot be serialized.
        """
        task.wrapper.prepare(task)
        self.serialize_checked(task)

    def _listened(self, signal: str) -> bool:
        """Whether any receiver would hear ``signal`` (producers skip building the call)."""
        receivers = self._signal.receivers
        return bool(receivers.get(signal) or receivers.get("any"))

    def _on_server_clock(self, moment: datetime.datetime | None) -> datetime.datetime | None:
        """A moment of this host's clock as the server's: workers of every host judge an
        expiry or a revocation's end by the server's clock (see ``_get_timestamp``)."""
        if not isinstance(moment, datetime.datetime):
            return moment  # None, or what huey refuses with its own message
        jobs = self.jobs
        offset = jobs.clock.offset if jobs is not None else 0.0
        return moment - datetime.timedelta(seconds=offset) if offset else moment

    def _resolve_expires(self, task: Task) -> None:
        task.resolve_expires(self.utc)
        task.expires_resolved = self._on_server_clock(task.expires_resolved)

    def revoke(self, task: Any, revoke_until: Any = None, revoke_once: bool = False) -> None:
        super().revoke(task, self._on_server_clock(revoke_until), revoke_once)

    def revoke_all(self, task_class: Any, revoke_until: Any = None,
                   revoke_once: bool = False) -> None:
        super().revoke_all(task_class, self._on_server_clock(revoke_until), revoke_once)

    def new_job(self, task: RunnerTask, *, bounded: bool = True) -> NewJob:
        """The row for a task: options resolved, arguments checked to serialize and,
        when ``bounded``, to fit ``[worker] max_payload_mb``.

        A worker writing a job from what is already stored (an event's handler jobs,
        a pipeline's next step carrying the result) passes ``bounded=False``: refusing
        there would fail work that was accepted.
        """
        task.wrapper.prepare(task)
        if task.expires:
            self._resolve_expires(task)
        data = self.serialize_checked(task, bounded=bounded)
        wrapper = task.wrapper
        # The fields every job has, in order (a call by keyword of all fourteen took three
        # times as long as these eight, on every enqueue); the others only where set.
        job = NewJob(task.id, wrapper.task_name, task.queue or "default",
                     int(task.priority or 0), data, preview_args(task.args, task.kwargs),
                     int(task.retries or 0) + 1,
                     to_timestamp(task.eta) if task.eta else time.time())
        unique = wrapper.unique
        job.unique_key = task.unique_key
        if unique is not None:
            if job.unique_key is None:
                job.unique_key = unique.key_for(wrapper.task_name, task.args, task.kwargs)
            job.unique_for, job.unique_states = unique.unique_for, unique.states
        if task.event_id is not None:
            job.event_id = task.event_id
        if task.schedule_name is not None:
            job.schedule = task.schedule_name
        if wrapper.flow is not None:
            job.concurrency_key = wrapper.flow.key_of(task.args, task.kwargs)
        return job

    def put_result(self, key: str, data: Any) -> Any:
        try:
            payload = self.serializer.serialize(data)
        except Exception as exc:
            # The serializer cannot carry this result (a set under JSON, a lock or a local
            # function under pickle): the job fails with the reason (and the waiting caller
            # gets it) instead of completing without its result, and is not retried, since
            # every attempt would end the same way.
            error = SerializationError(f"the result of job {key} cannot be stored: {exc}")
            attempt: Attempt | None = getattr(_local, "attempt", None)
            if attempt is not None and attempt.claimed.id == key:
                attempt.exception = error
                attempt.failure = describe_failure(error, "error", attempt.started_at)
            self._put_payload(key, self.serializer.serialize(Error(
                {"error": repr(error), "retries": 0, "traceback": "", "task_id": key})))
            raise error from None
        return self._put_payload(key, payload)

    def _put_payload(self, key: str, payload: bytes) -> Any:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        if self.jobs is not None and attempt is not None and key in attempt.pipeline:
            # The job's result (or the error of each pipeline step): written with its outcome.
            attempt.results.append((key, payload))
            return None
        return self.storage.put_data(key, payload, is_result=True)

    def _run_post_execute(self, task: Any, task_value: Any, exception: Any) -> None:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        jobs = self.jobs
        if (exception is None and attempt is not None and jobs is not None
                and attempt.claimed.id == getattr(task, "id", None)
                and attempt.interrupt.requested):
            # Cooperative code saw the cancel and returned: the job ends cancelled, and its
            # caller is answered so (as when it raises JobCancelled), not with the value.
            attempt.outcome, attempt.reason = JobState.CANCELLED, attempt.interrupt.message()
            answer = self.serializer.serialize(Error({
                "error": repr(JobCancelled(attempt.reason)), "retries": 0, "traceback": "",
                "task_id": task.id}))
            attempt.results[:] = [*(r for r in attempt.results if r[0] != task.id),
                                  (task.id, answer)]
        elif (exception is None and attempt is not None and jobs is not None
                and attempt.claimed.id == getattr(task, "id", None) and not attempt.abandoned):
            # Success: the completion, the result and the next pipeline step go in one
            # transaction now, before SIGNAL_COMPLETE, so its receivers can read them.
            follow_ups = []
            if task.on_complete is not None:
                step = copy.copy(task.on_complete)  # huey extends the original after us
                step.extend_data(task_value)
                follow_ups.append(self.new_job(step, bounded=False))
            jobs.ack_completed(attempt.claimed.id, attempt.claimed.attempt,
                               started_at=attempt.started_at, results=attempt.results,
                               jobs=follow_ups)
            attempt.outcome, attempt.settled = JobState.COMPLETED, True
        super()._run_post_execute(task, task_value, exception)

    def serialize_checked(self, task: RunnerTask, *, bounded: bool = True) -> bytes:
        """Serialize a task, or say which argument cannot be; nothing is written.

        Raises:
            InvalidArgument: the task's function cannot take the call, or (``bounded``)
                its payload is over ``[worker] max_payload_mb``.
            SerializationError: an argument cannot be serialized.
        """
        task.wrapper.check_arguments(task.args, task.kwargs)
        settings = self.settings
        cached = self._encoder
        if cached is None or cached[0] is not settings:
            # Both follow from the settings (the serializer from [runner] serializer).
            cached = self._encoder = (settings, message_encoder(self.serializer),
                                      payload_limit(settings.worker.max_payload_mb))
        try:
            # huey's serialize_task, with the Message's fields pickled as a plain tuple:
            # the same payload for a third of the pickling (see message_encoder).
            data = cached[1](tuple(self._registry.create_message(task)))
        except Exception as exc:
            raise unserializable(task.wrapper.task_name, task.args, task.kwargs, exc,
                                 self.serializer.serialize) from None
        if bounded and len(data) > cached[2]:
            raise payload_too_large(f"task '{task.wrapper.task_name}'", len(data),
                                    settings.worker.max_payload_mb)
        return data

    # -- results ---------------------------------------------------------------

    def build_error_result(self, task: Any, exception: BaseException) -> dict[str, Any]:
        try:
            return super().build_error_result(task, exception)
        except Exception:
            # The task's error has a repr() that raises: huey's error result would end the
            # attempt before its outcome is written.
            return {"error": f"<{type(exception).__name__}: repr() failed>",
                    "retries": task.retries, "task_id": task.id,
                    "traceback": "".join(traceback.format_exception(exception))}

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
