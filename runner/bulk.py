"""Many calls of one task written at once (``task.map()``): rows built in one loop.

A job enqueued alone goes through a huey Task, its Message, a pickle of that
namedtuple and a Result. In a ``map()`` every job of the call has the same
task, options and enqueue time; only its id and arguments differ. So the
options are resolved once, on one prepared prototype call, and each job costs
an id, a pickle of a plain tuple (:func:`runner.serializers.message_encoder`)
and a preview of its arguments. The Result handles are made when they are read
(:class:`MapResults`): a bulk producer rarely reads all of them, and making a
Task and a Result per job cost as much as writing the row.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from huey.api import Result

from runner.arguments import preview_args, unserializable
from runner.errors import InvalidArgument, SerializationError
from runner.payload_size import payload_limit, payload_too_large
from runner.store.job_rows import NewJob
from runner.task import RunnerTask, RunnerTaskWrapper

#: The fields of huey's Message in the order :func:`map_jobs` writes them.
MESSAGE_FIELDS = ("id", "name", "eta", "retries", "retry_delay", "priority", "args", "kwargs",
                  "on_complete", "on_error", "expires", "expires_resolved", "timeout",
                  "chord_config", "retry_backoff")


def map_jobs(wrapper: RunnerTaskWrapper, prototype: RunnerTask, message: tuple,
             calls: Sequence[tuple], ids: Sequence[str], encode: Callable[[tuple], bytes],
             serialize: Callable[[Any], object], max_payload_mb: float) -> list[NewJob]:
    """The rows of ``wrapper`` called with each of ``calls`` (no keyword arguments).

    ``prototype`` is a call already prepared (options filled, expiry resolved)
    and ``message`` its huey Message: each job's payload is that Message with
    the job's id and arguments, as if each call had been prepared on its own.

    Raises:
        SerializationError: a call's arguments cannot be serialized, named by position
            (``map item N of M``, counted from 1 as its arguments are).
        InvalidArgument: a call's payload is over ``max_payload_mb``, named alike.
    """
    if type(message)._fields != MESSAGE_FIELDS:
        raise TypeError(f"huey's Message has fields {type(message)._fields}, not "
                        f"{MESSAGE_FIELDS}")
    (_, name, eta, retries, retry_delay, priority, _, _, on_complete, on_error, expires,
     expires_resolved, timeout, chord_config, retry_backoff) = message
    task_name = wrapper.task_name
    queue = prototype.queue or "default"
    row_priority = int(prototype.priority or 0)
    max_attempts = int(prototype.retries or 0) + 1
    run_at = time.time()
    unique = wrapper.unique
    flow = wrapper.flow if wrapper.flow is not None and wrapper.flow.concurrency_key else None
    unique_for = unique.unique_for if unique is not None else None
    unique_states = unique.states if unique is not None else ()
    limit = payload_limit(max_payload_mb)
    jobs: list[NewJob] = []
    append = jobs.append
    no_kwargs: dict = {}  # pickled and previewed, never kept: one dict serves every job
    for ident, args in zip(ids, calls, strict=True):
        try:
            data = encode((ident, name, eta, retries, retry_delay, priority, args, no_kwargs,
                           on_complete, on_error, expires, expires_resolved, timeout,
                           chord_config, retry_backoff))
        except Exception as exc:
            error = unserializable(task_name, args, {}, exc, serialize)
            raise SerializationError(
                f"map item {len(jobs) + 1} of {len(calls)}: {error}") from None
        if len(data) > limit:
            refused = payload_too_large(f"task '{task_name}'", len(data), max_payload_mb)
            raise InvalidArgument(f"map item {len(jobs) + 1} of {len(calls)}: {refused}")
        append(NewJob(
            ident, task_name, queue, row_priority, data, preview_args(args, no_kwargs),
            max_attempts, run_at,
            unique.key_for(task_name, args, {}) if unique is not None else None, None, None,
            flow.key_of(args, {}) if flow is not None else None, unique_for, unique_states))
    return jobs


class MapResults(Sequence[Result]):
    """The Result of each job of a ``map()``, each made on first read (then kept).

    A job whose unique key named an existing job reads as that job, as a single
    enqueue of the same call would.
    """

    def __init__(self, make: Callable[[RunnerTask], Result], prototype: RunnerTask,
                 calls: Sequence[tuple], ids: Sequence[str],
                 duplicates: dict[str, str]) -> None:
        self._make = make
        self._prototype = prototype
        self._calls = calls
        self._ids = ids
        self._duplicates = duplicates
        self._made: list[Result | None] = [None] * len(ids)

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> Result: ...

    @overload
    def __getitem__(self, index: slice) -> list[Result]: ...

    def __getitem__(self, index: int | slice) -> Result | list[Result]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        made = self._made[index]
        if made is None:
            made = self._made[index] = self._make(self.task(index))
        return made

    def __iter__(self) -> Iterator[Result]:
        for index in range(len(self._ids)):
            yield self[index]

    def task(self, index: int) -> RunnerTask:
        """The Task of job ``index``, as a single enqueue of its call would hold it."""
        task = copy.copy(self._prototype)
        task.args, task.kwargs = self._calls[index], {}
        task.id = self._ids[index]
        existing = self._duplicates.get(task.id)
        if existing is not None:
            task.duplicate_of = task.id = existing
        task.revoke_id = f"r:{task.id}"
        return task
