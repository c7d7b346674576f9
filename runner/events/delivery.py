"""Event tasks: ``@event_handler``, ``emit()``, the fan-out job and ``replay()``.

``emit(name, data)`` writes a ``runner_event`` row and one dispatch job in one
transaction. The dispatch job is an ordinary job of the built-in task
``runner.events.dispatch``: a worker claims it under a lease like any job,
looks the event name up in *its own* handler registry, and writes one job per
matching handler (linked by ``event_id``) in one transaction. Each handler job
then retries, times out and dies on its own. Delivery is at least once per
handler, like every job: make handlers idempotent.

A handler is a normal task (all ``@task`` options and ``[tasks.NAME]`` apply)
whose single argument is the event data; ``[events]`` settings can override
its options (see :mod:`runner.events.settings`). Patterns are described in
:mod:`runner.event_patterns`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from runner.config import Settings
from runner.errors import ConfigError, InvalidArgument, SerializationError
from runner.event_patterns import check_name, check_pattern, encode_data, matches
from runner.events.settings import event_settings
from runner.ids import new_id, new_ids
from runner.payload_size import payload_limit, payload_too_large
from runner.registry import get_huey, task
from runner.runner_huey import RunnerHuey
from runner.store.event_rows import EventRow, EventStatus, NewEvent
from runner.store.job_rows import NewJob
from runner.store.job_storage import JobStorage
from runner.store.rows import DISPATCH_TASK
from runner.task import RunnerTaskWrapper
from runner.task_options import (
    check_on_failure,
    check_options,
    collect_options,
    exception_classes,
)

logger = logging.getLogger(__name__)

#: Name of the built-in task that fans an event out to its handlers.
#: Most events one dispatch job carries (emit_many batches are split).
DISPATCH_BATCH = 500
#: Longest one dispatch job keeps sweeping before it hands over to a new one.
SWEEP_SECONDS = 10.0


class EventHandlerWrapper(RunnerTaskWrapper):
    """What ``@event_handler`` returns: a task subscribed to an event pattern."""

    def __init__(self, huey: RunnerHuey, func: Callable[..., Any], *, pattern: str,
                 **kwargs: Any) -> None:
        self.pattern = pattern
        super().__init__(huey, func, **kwargs)

    def configured_options(self, settings: Settings) -> dict[str, Any]:
        options = super().configured_options(settings)
        options.update(event_settings(settings).override(self.task_name, self.pattern))
        return options


@dataclass(frozen=True)
class Handler:
    """One subscription: a pattern and the handler task it feeds."""

    pattern: str
    wrapper: EventHandlerWrapper

    @property
    def name(self) -> str:
        """The handler's task name (as in ``[tasks.NAME]`` and the jobs table)."""
        return self.wrapper.task_name


_registry: dict[str, Handler] = {}
_matching: dict[str, list[Handler]] = {}
_registry_lock = threading.Lock()


def event_handler(pattern: str, *, name: str | None = None, queue: str | None = None,
                  priority: int | None = None, retry_limit: int | None = None,
                  max_retries: int | None = None, retry_delay: float | None = None,
                  backoff: float | None = None, max_retry_delay: float | None = None,
                  jitter: float | None = None, timeout: float | None = None,
                  retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
                  no_retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
                  on_failure: Callable[..., Any] | None = None,
                  ) -> Callable[[Callable[..., Any]], EventHandlerWrapper]:
    """Subscribe a function (plain or ``async def``) to events matching ``pattern``.

    The function receives the event data (a JSON value, usually a dict) as its
    only argument. Every option means what it means for ``@task``.

    Args:
        pattern: an event name or a wildcard pattern (``user.*``, ``user.**``, ``*.signup``).
        name: handler/task name (default: the function's name); unique per process.

    Raises:
        ConfigError: a bad pattern or option, or a name already used by another handler.
    """
    check_pattern(pattern)
    options = collect_options(
        queue=queue, priority=priority, retry_limit=retry_limit, max_retries=max_retries,
        retry_delay=retry_delay, backoff=backoff, max_retry_delay=max_retry_delay,
        jitter=jitter, timeout=timeout)

    def decorate(fn: Callable[..., Any]) -> EventHandlerWrapper:
        handler_name = name or fn.__name__
        check_options(handler_name, options)
        check_on_failure(handler_name, on_failure)
        wrapper = EventHandlerWrapper(
            get_huey(), fn, pattern=pattern, name=name, options=dict(options),
            retry_on=exception_classes(handler_name, "retry_on", retry_on),
            no_retry_on=exception_classes(handler_name, "no_retry_on", no_retry_on),
            on_failure=on_failure)
        _register(Handler(pattern, wrapper))
        return wrapper

    return decorate


def _register(handler: Handler) -> None:
    with _registry_lock:
        old = _registry.get(handler.name)
        if old is not None and _origin(old) != _origin(handler):
            raise ConfigError(f"event handler name '{handler.name}' is used by both "
                              f"{_origin(old)} and {_origin(handler)}; pass name=")
        _registry[handler.name] = handler
        _matching.clear()


def _origin(handler: Handler) -> str:
    func = handler.wrapper.func
    return f"{func.__module__}.{func.__qualname__}"


def handlers() -> list[Handler]:
    """Every subscription registered in this process, by pattern then name."""
    return sorted(_registry.values(), key=lambda h: (h.pattern, h.name))


def unknown_handler_sections(settings: Settings) -> list[str]:
    """The names of ``[events.handlers.NAME]`` sections no handler of this process has,
    sorted (a typo there applies to nothing, as a stray ``[tasks.NAME]`` would)."""
    known = {h.name for h in handlers()}
    return sorted(name for name in settings.events.handlers if name not in known)


def handlers_for(event_name: str) -> list[Handler]:
    """The handlers of this process whose pattern matches ``event_name``."""
    found = _matching.get(event_name)
    if found is None:
        found = [h for h in handlers() if matches(h.pattern, event_name)]
        with _registry_lock:
            if len(_matching) > 10_000:
                _matching.clear()
            _matching[event_name] = found
    return found


# -- producing ---------------------------------------------------------------------


def emit(name: str, data: Any = None, *, key: str | None = None, delay: float | None = None,
         now: float | None = None, source: str | None = None) -> str:
    """Record an event and queue its fan-out; returns the event id.

    Args:
        name: dot-separated segments of ``[A-Za-z0-9_-]``, e.g. ``user.signup``.
        data: a JSON-serializable value given to every handler (default ``{}``).
        key: idempotency key: a second emit with the same key within
            ``[events] dedupe_window`` seconds writes nothing and returns the
            first event's id.
        delay: seconds before the event is dispatched to its handlers.
        now: the emit time (default: the clock); makes tests of the window exact.
        source: recorded origin (default ``host/pid``).

    Raises:
        SerializationError: a bad name, or data that is not JSON or has a mapping
            key that is not a string (the bad value's or key's path is named);
            nothing was written.
        InvalidArgument: the data, as JSON, is over ``[worker] max_payload_mb``;
            nothing was written.
        DatabaseLocked: the database stayed locked for ``[events] emit_deadline``
            seconds; nothing was written.
    """
    return _emit([_new_event(name, data, key, delay)], now, source, batch=False)[0]


def emit_many(events: Iterable[tuple[str, Any] | Mapping[str, Any]], *,
              now: float | None = None, source: str | None = None) -> list[str]:
    """Record several events in one transaction; returns their ids in order.

    Each item is ``(name, data)`` or a mapping with ``name`` and optional
    ``data``, ``key`` and ``delay``. Every item is validated before anything
    is written; errors and keys behave as in :func:`emit`.
    """
    given = list(events)
    items = []
    for position, item in enumerate(given, 1):
        try:
            items.append(_batch_item(item))
        except SerializationError as exc:
            raise SerializationError(
                f"emit_many item {position} of {len(given)}: {exc}") from None
    return _emit(items, now, source, batch=True) if items else []


def _batch_item(item: Any) -> tuple[str, str, str | None, float]:
    # Pairs first: an isinstance check against the Mapping ABC costs more than the pair.
    if isinstance(item, (tuple, list)) and 1 <= len(item) <= 2:
        return _new_event(item[0], item[1] if len(item) > 1 else None, None, None)
    if isinstance(item, Mapping):
        unknown = set(item) - {"name", "data", "key", "delay"}
        if unknown or "name" not in item:
            raise SerializationError(f"expected keys name, data, key, delay; got "
                                     f"{sorted(item)}; nothing was written")
        return _new_event(item["name"], item.get("data"), item.get("key"), item.get("delay"))
    if isinstance(item, (tuple, list)):
        raise SerializationError(
            f"a tuple is (name, data), got {len(item)} item(s); give key and delay in the "
            "mapping form {'name': ..., 'data': ..., 'key': ..., 'delay': ...}; "
            "nothing was written")
    raise SerializationError(f"expected (name, data) or a mapping, got {type(item).__name__}; "
                             "nothing was written")


def _new_event(name: Any, data: Any, key: Any, delay: Any) -> tuple[str, str, str | None, float]:
    check_name(name)
    if key is None and delay is None:
        return name, encode_data(name, {} if data is None else data), None, 0.0
    if key is not None and (not isinstance(key, str) or not key):
        raise SerializationError(f"event '{name}': key must be a non-empty string, got {key!r}")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, (int, float))
                              or not 0 <= delay < math.inf):
        raise SerializationError(f"event '{name}': delay must be a finite number of seconds "
                                 f">= 0, got {delay!r}")
    return name, encode_data(name, {} if data is None else data), key, float(delay or 0)


_host = socket.gethostname()


def _emit(items: list[tuple[str, str, str | None, float]], now: float | None,
          source: str | None, *, batch: bool) -> list[str]:
    huey = get_huey()
    # Before the inline run of immediate mode too: a test must fail where production does.
    _check_sizes(items, huey.settings.worker.max_payload_mb, batch)
    jobs = huey.jobs
    if jobs is None:
        return _emit_inline(huey, items)
    settings = event_settings(huey.settings)
    # Due times and the dedupe window are judged by every host: the server's clock.
    at = jobs.clock.now() if now is None else jobs.clock.to_server(now)
    origin = source or f"{_host}/{os.getpid()}"
    events = [NewEvent(ident, name, data, key, origin)
              for ident, (name, data, key, _) in zip(new_ids(len(items)), items, strict=True)]
    by_delay: dict[float, list[str]] = {}
    for event, (_, _, _, delay) in zip(events, items, strict=True):
        by_delay.setdefault(delay, []).append(event.id)
    dispatch: list[tuple[NewJob, Sequence[str]]] = []
    for delay, ids in by_delay.items():
        for start in range(0, len(ids), DISPATCH_BATCH):
            chunk = ids[start:start + DISPATCH_BATCH]
            # A single event's dispatch job takes the event's id, so a dispatch that
            # sweeps this event up can also settle the job (see _dispatch).
            job = dispatch_task.s(*chunk, id=chunk[0] if len(chunk) == 1 else None)
            job.queue = settings.dispatch_queue
            job.priority = settings.dispatch_priority
            new = huey.new_job(job)
            # run_at is the emit time itself, so the row is 'available', not 'scheduled'
            # (set on the job before it is handed over: a dataclasses.replace copy costs
            # about as much as the event's insert statement).
            new.run_at = at + delay
            dispatch.append((new, chunk))
    ids = jobs.store.insert_events(events, dispatch, now=at,
                              dedupe_window=settings.dedupe_window,
                              deadline=settings.emit_deadline)
    jobs.wake()
    return ids


def _check_sizes(items: list[tuple[str, str, str | None, float]], max_payload_mb: float,
                 batch: bool) -> None:
    """Refuse the emit when an event's data is over ``[worker] max_payload_mb`` (the
    JSON is ASCII: its length is the bytes stored), naming it as emit_many's items are."""
    limit = payload_limit(max_payload_mb)
    for position, (name, data, _, _) in enumerate(items, 1):
        if len(data) > limit:
            refused = payload_too_large(f"event '{name}'", len(data), max_payload_mb)
            if not batch:
                raise refused
            raise InvalidArgument(f"emit_many item {position} of {len(items)}: {refused}")


#: The event whose handlers run at the call in immediate mode, for :func:`current_event`.
_inline_event: ContextVar[EventRow | None] = ContextVar("runner_inline_event", default=None)


def _emit_inline(huey: RunnerHuey, items: list[tuple[str, str, str | None, float]]) -> list[str]:
    # Immediate mode (runner.testing.immediate): no database; handlers run at the call.
    ids = []
    for name, data, key, _ in items:
        ident, now = new_id(), time.time()
        handlers = handlers_for(name)
        event = EventRow(ident, name, data, key, now, f"{_host}/{os.getpid()}",
                         EventStatus.DISPATCHED if handlers else EventStatus.UNHANDLED,
                         now, None, len(handlers), 1)
        token = _inline_event.set(event)
        try:
            for handler in handlers:
                huey.enqueue(handler.wrapper.s(json.loads(data)))
        finally:
            _inline_event.reset(token)
        ids.append(ident)
    return ids


# -- consuming: the dispatch job ---------------------------------------------------


def _dispatch(*event_ids: str) -> None:
    """Fan pending events out to this worker's handlers (returns None: no result is stored).

    Besides its own events it sweeps up every due pending event, in batches, until
    none is left: emits made while a dispatch job waited unclaimed share that job
    (see ``Store.insert_events``) and rely on this sweep.
    """
    huey = get_huey()
    jobs = huey.jobs
    if jobs is None:
        return
    own = jobs.store.pending_events(event_ids)
    give_up = time.monotonic() + SWEEP_SECONDS
    while True:
        due = jobs.store.due_pending_events(now=jobs.clock.now(), limit=DISPATCH_BATCH)
        _fan_out(huey, jobs, own + due, event_ids)
        own = []
        if len(due) < DISPATCH_BATCH:
            return
        if time.monotonic() > give_up:
            # Leave the rest to a fresh dispatch job rather than hold this worker.
            huey.enqueue(dispatch_task.s())
            return


def _fan_out(huey: RunnerHuey, jobs: JobStorage, found: list[EventRow],
             event_ids: tuple[str, ...]) -> None:
    plan: dict[str, list[NewJob]] = {}
    names: dict[str, str] = {}
    for event in found:
        if event.id in plan:
            continue
        names[event.id] = event.name
        payload = event.payload
        plan[event.id] = list(jobs.clock.jobs([handler_job(huey, h, event.id, payload)
                                               for h in handlers_for(event.name)]))
    if not plan:
        return
    done = jobs.store.fan_out(plan, settle=[i for i in plan if i not in event_ids],
                              now=jobs.clock.now())
    if any(done.values()):
        jobs.wake()
    for event_id, count in done.items():
        if not count:
            logger.warning("event %s (%s) matched no handler in this worker; recorded as "
                           "unhandled (replay it once a handler exists)", event_id,
                           names[event_id])


dispatch_task = task(name=DISPATCH_TASK, retry_limit=10, retry_delay=0.2, max_retry_delay=30,
                     timeout=120)(_dispatch)


def handler_job(huey: RunnerHuey, handler: Handler, event_id: str, payload: Any, *,
                job_id: str | None = None) -> NewJob:
    job = handler.wrapper.s(payload, id=job_id)
    job.event_id = event_id
    # The event's data was held to the bound when emitted; its pickle may differ a little.
    return huey.new_job(job, bounded=False)


def current_event() -> EventRow | None:
    """Inside a handler: the event being handled (name, id, key, ...), else None."""
    from runner.runner_huey import current_job

    inline = _inline_event.get()
    if inline is not None:
        return inline

    job = current_job()
    jobs = get_huey().jobs
    if job is None or jobs is None:
        return None
    return jobs.store.event_of_job(job.id)

