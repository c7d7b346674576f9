"""Task definitions: the ``@task`` decorator, option resolution, and how an attempt runs.

Options are resolved at enqueue time, in this order: ``[worker]`` defaults, the
decorator's arguments, then ``[tasks.NAME]`` from settings.toml, so an operator
can change a task's timeout or queue without touching code.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

from huey.api import Huey, ResultGroup, Task
from huey.exceptions import RetryTask

from runner.attempt import current_interrupt
from runner.call_options import (
    CALL_OPTIONS,
    SHAPES_KEPT,
    CheckedCalls,
    call_problem,
    check_call,
    named_parameters,
)
from runner.config import Settings
from runner.errors import InvalidArgument, TaskAborted
from runner.execution import run_coroutine, run_sync
from runner.flow import FlowLimits, Rate
from runner.ids import new_id
from runner.retry import RetryPolicy
from runner.sections import TaskSection
from runner.uniqueness import UniqueSpec

_OPTION_NAMES = ("queue", "priority", "retry_limit", "retry_delay", "backoff",
                 "max_retry_delay", "jitter", "timeout")


@dataclass(frozen=True)
class Failure:
    """What an ``on_failure`` fallback receives once a job has failed for good."""

    job_id: str
    task: str
    args: tuple
    kwargs: dict
    error_type: str
    error: str
    traceback: str
    attempts: int


@dataclass(frozen=True)
class TaskOptions:
    """The effective options of a task under the current settings."""

    queue: str = "default"
    priority: int = 0
    timeout: float | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)


class RunnerTask(Task):
    """A huey Task that also knows its queue and what it was created for."""

    # None means "not given": filled from the resolved options at enqueue time.
    default_retries = None
    default_priority = None
    default_timeout = None
    queue: str | None = None
    wrapper: RunnerTaskWrapper

    #: The id :meth:`create_id` made, until the job is written (see ``NewJob.fresh``).
    fresh_id: str | None = None
    #: ``id()`` of the object :meth:`create_id` ran for: a copy (huey copies a chord's
    #: callback at each enqueue) carries the same id and must not count as fresh.
    fresh_for: int | None = None

    def create_id(self) -> str:
        self.fresh_id, self.fresh_for = new_id(), id(self)
        return self.fresh_id

    def takes_fresh_id(self, job_id: str) -> bool:
        """Whether ``job_id`` was made for this very object and never written: true once."""
        fresh = self.fresh_id == job_id and self.fresh_for == id(self)
        self.fresh_id = self.fresh_for = None
        return fresh

    # Defaults of what a call was created for, as class attributes: set on the few
    # calls that have them, so huey's __init__ is not wrapped for every call.
    event_id: str | None = None
    schedule_name: str | None = None
    unique_key: str | None = None
    #: The id of the job this call duplicated (its unique key); nothing was written.
    duplicate_of: str | None = None


@dataclass(frozen=True)
class TaskFlow:
    """A task's own flow limits (``@task(concurrency=, concurrency_key=, rate_limit=)``)."""

    concurrency: int = 0
    """Most jobs of the task running at once (per key with ``concurrency_key``); 0 = no limit."""
    concurrency_key: Callable[..., Any] | None = None
    """Called with the job's arguments; jobs with equal keys share ``concurrency``."""
    rate: Rate | None = None

    def under(self, section: TaskSection | None) -> TaskFlow:
        """These limits with ``[tasks.NAME]``'s over them (0 or "" there lifts one)."""
        if section is None:
            return self
        concurrency = self.concurrency if section.concurrency is None else section.concurrency
        rate = self.rate if section.rate_limit is None else section.rate
        return replace(self, concurrency=concurrency, rate=rate)

    def key_of(self, args: tuple, kwargs: dict) -> str | None:
        """The concurrency key of one call's arguments (None without a key function)."""
        if self.concurrency_key is None:
            return None
        return str(self.concurrency_key(*args, **kwargs))


_NO_FLOW = TaskFlow()


class TaskRegistry:
    """The tasks defined on one runner, by full name (``module.name``).

    Every wrapper registers here when it is decorated, so the CLI and the
    worker list and find tasks without reading huey's private registry.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, RunnerTaskWrapper] = {}
        self._lock = threading.Lock()
        self._changes = 0
        #: (settings, registry changes, limits): the settings object itself is kept, not
        #: its id(), which a later Settings may take once this one is freed.
        self._limits: tuple[Settings, int, FlowLimits] | None = None

    def register(self, full_name: str, wrapper: RunnerTaskWrapper) -> None:
        with self._lock:
            self._tasks[full_name] = wrapper
            self._changes += 1

    def unregister(self, full_name: str) -> None:
        with self._lock:
            self._tasks.pop(full_name, None)
            self._changes += 1

    def flow_limits(self, settings: Settings) -> FlowLimits:
        """Every limit a claim applies: ``[queues.NAME]``, ``[worker] priority_aging``
        and the tasks' own (by task name, as jobs record it)."""
        cached = self._limits
        if cached is not None and cached[0] is settings and cached[1] == self._changes:
            return cached[2]
        changes = self._changes
        queues = settings.queues
        weights = {q: s.weight for q, s in queues.items()}
        task_concurrency: dict[str, int] = {}
        key_concurrency: dict[str, int] = {}
        task_rates: dict[str, Rate] = {}
        for wrapper in self.all().values():
            flow = (wrapper.flow or _NO_FLOW).under(settings.tasks.get(wrapper.task_name))
            if _one_at_a_time(wrapper, settings):
                flow = replace(flow, concurrency=1)
            if flow.concurrency:
                keyed = key_concurrency if flow.concurrency_key else task_concurrency
                keyed[wrapper.task_name] = flow.concurrency
            if flow.rate is not None:
                task_rates[wrapper.task_name] = flow.rate
        limits = FlowLimits(
            aging=settings.worker.priority_aging,
            # All weights 1 (the default): no sharing, jobs go by priority across queues.
            weights=weights if any(w != 1 for w in weights.values()) else {},
            queue_concurrency={q: s.concurrency for q, s in queues.items() if s.concurrency},
            queue_rates={q: r for q, s in queues.items() if (r := s.rate) is not None},
            task_concurrency=task_concurrency, key_concurrency=key_concurrency,
            task_rates=task_rates)
        self._limits = (settings, changes, limits)
        return limits

    def all(self) -> dict[str, RunnerTaskWrapper]:
        """Every registered task, by full name."""
        with self._lock:
            return dict(self._tasks)

    def find(self, name: str) -> RunnerTaskWrapper | None:
        """The task of a full name, or of a short name (``[tasks.NAME]``) when unique."""
        tasks = self.all()
        if name in tasks:
            return tasks[name]
        short = [w for w in tasks.values() if w.task_name == name]
        return short[0] if len(short) == 1 else None


def _one_at_a_time(wrapper: RunnerTaskWrapper, settings: Settings) -> bool:
    """Whether the task runs a schedule with ``overlap="queue_one"`` (``[schedules.NAME]``
    wins over the decorator): the run waiting behind a running one must not start beside
    it, on any worker, so the claim holds its jobs to one at a time."""
    if wrapper.overlap is None:
        return False
    section = settings.schedules.get(wrapper.task_name)
    overlap = section.overlap if section is not None and section.overlap else wrapper.overlap
    return overlap == "queue_one"


def unknown_task_sections(settings: Settings, registry: TaskRegistry) -> list[str]:
    """The names of ``[tasks.NAME]`` sections that no registered task has, sorted."""
    known = {wrapper.task_name for wrapper in registry.all().values()}
    return sorted(name for name in settings.tasks if name not in known)


class _Configured(Protocol):
    """What a wrapper needs of the huey it registers with (``RunnerHuey`` sits above)."""

    settings: Settings
    results: bool
    task_registry: TaskRegistry

    def enqueue_many(self, tasks: Iterable[Any], *, batch_size: int = 1000) -> list[Any]: ...

    def map_calls(self, wrapper: RunnerTaskWrapper, calls: Sequence[tuple], *,
                  batch_size: int = 1000) -> Sequence[Any]: ...


class RunnerTaskWrapper(CheckedCalls):
    """What ``@task`` returns: call it to enqueue, ``.call_local()`` to run inline."""

    task_base = RunnerTask

    def __init__(self, huey: Huey, func: Callable[..., Any], *, name: str | None,
                 options: dict[str, Any], retry_on: tuple[type[BaseException], ...] = (),
                 no_retry_on: tuple[type[BaseException], ...] = (),
                 on_failure: Callable[..., Any] | None = None, context: bool = False,
                 expires: Any = None, flow: TaskFlow | None = None) -> None:
        self.task_name = name or func.__name__
        self.is_async = inspect.iscoroutinefunction(func)
        self.options = options
        self.retry_on = retry_on
        self.no_retry_on = no_retry_on
        self.on_failure = on_failure
        #: (settings, options): the object itself, as id() may name a later Settings.
        self._resolved: tuple[Settings, TaskOptions] | None = None
        self.expires = expires
        self.flow = flow
        #: How calls are made unique (``@task(unique=...)``), or None.
        self.unique: UniqueSpec | None = None
        #: The call options huey takes out of a call's keywords that the function names as
        #: its own parameters: a call passes those to the function.
        self.own_options = named_parameters(func) & CALL_OPTIONS
        #: What binding each shape of call (arguments given, keywords named) to the
        #: function said: an error message, or None when it takes such a call.
        self._shapes: dict[tuple[int, tuple[str, ...]], str | None] = {}
        #: The overlap policy of the schedule this task runs (``@scheduled_task``), or None.
        self.overlap: str | None = None
        super().__init__(huey, func, context=context, name=name)
        # After huey's own registration, which refuses a duplicate name.
        cast(_Configured, huey).task_registry.register(self.full_name, self)

    @property
    def full_name(self) -> str:
        """``module.name``: unique per runner (the name huey serializes jobs under)."""
        return f"{self.task_class.__module__}.{self.task_class.__name__}"

    def s(self, *args: Any, **kwargs: Any) -> RunnerTask:
        """The job of one call; a keyword huey would take as an option (``timeout``,
        ``priority``, ``delay``...) goes to the function when it names that parameter."""
        if not kwargs:
            # Most calls: no due time to check (CheckedCalls), nothing to hand the function,
            # no option for huey's s() to take out: its Task with every option left unset,
            # made without passing the eight of them by keyword (a tenth of an enqueue).
            return self.task_class(args, {})  # type: ignore[no-any-return]
        own = self.own_options.intersection(kwargs) if self.own_options else ()
        if not own:
            return cast(RunnerTask, super().s(*args, **kwargs))
        mine = {name: kwargs.pop(name) for name in own}
        job = cast(RunnerTask, super().s(*args, **kwargs))
        job.kwargs.update(mine)
        return job

    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any] | None) -> None:
        """Refuse a call the function cannot take: its job could only fail when run.

        Raises:
            InvalidArgument: naming the task, its parameters and what does not fit.
        """
        if not isinstance(args, (tuple, list)):
            return  # huey takes a lone value for the arguments of schedule(); so does this
        shape = (len(args), tuple(sorted(kwargs)) if kwargs else ())
        try:
            problem = self._shapes[shape]
        except KeyError:
            problem = call_problem(self.func, self.context, shape)
            if len(self._shapes) < SHAPES_KEPT:
                self._shapes[shape] = problem
        if problem is not None:
            raise InvalidArgument(f"task '{self.task_name}': {problem}; nothing was written")

    def unregister(self) -> bool:
        cast(_Configured, self.huey).task_registry.unregister(self.full_name)
        return bool(super().unregister())

    def create_task(self, func: Callable[..., Any], context: bool = False,
                    name: str | None = None, **settings: Any) -> type[RunnerTask]:
        wrapper = self

        def execute(task: RunnerTask) -> Any:
            args, kwargs = task.data
            if task.context:
                kwargs = dict(kwargs, task=task)  # a copy: a retry must not store it
            return wrapper.run(task, args, kwargs)

        attrs = {"context": context, "execute": execute, "wrapper": self,
                 "default_expires": self.expires,
                 "__module__": func.__module__, "__doc__": func.__doc__}
        return type(name or func.__name__, (self.task_base,), attrs)

    def run(self, task: RunnerTask, args: tuple, kwargs: dict) -> Any:
        """Run one attempt; errors this task does not retry use up its retries."""
        interrupt = current_interrupt()
        try:
            if self.is_async:
                return run_coroutine(lambda: self.func(*args, **kwargs), task.timeout,
                                     interrupt)
            return run_sync(self.func, args, kwargs, task.timeout, interrupt)
        except RetryTask:
            raise  # a request for another attempt, not an error: the retry limit stays whole
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, TaskAborted) else exc
            if not self.resolve().policy.should_retry(cause or exc):
                task.retries = 0
            raise
        except BaseException as exc:
            # huey lets these out of the attempt: the worker thread died with the job's
            # outcome unwritten, and the job ran again without end. They fail the attempt.
            if not self.resolve().policy.should_retry(exc):
                task.retries = 0
            raise TaskAborted(exc) from exc

    def map(self, it: Iterable[Any], *, batch_size: int = 1000) -> ResultGroup | None:
        """Enqueue one job per item (a tuple of arguments, or one argument), in batches.

        One transaction per ``batch_size`` jobs; see :func:`runner.enqueue_many`.
        """
        huey = cast(_Configured, self.huey)
        items = [i if isinstance(i, tuple) else (i,) for i in it]
        results = huey.map_calls(self, items, batch_size=batch_size)
        return ResultGroup(results) if huey.results else None

    def call_local(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function here and now, without the queue (async ones too)."""
        if self.is_async:
            return run_coroutine(lambda: self.func(*args, **kwargs), None)
        return self.func(*args, **kwargs)

    def resolve(self, settings: Settings | None = None) -> TaskOptions:
        """The task's options under ``settings`` (default: the runner's settings)."""
        settings = settings or self.huey.settings  # type: ignore[attr-defined]
        cached = self._resolved
        if cached is not None and cached[0] is settings:
            return cached[1]
        w = settings.worker
        merged: dict[str, Any] = {
            "queue": "default", "priority": 0, "retry_limit": w.retry_limit,
            "retry_delay": w.retry_delay, "backoff": w.backoff,
            "max_retry_delay": w.max_retry_delay, "jitter": w.jitter, "timeout": w.timeout}
        merged.update(self.configured_options(settings))
        merged.update(settings.task_override(self.task_name).as_options())
        options = TaskOptions(
            queue=merged["queue"], priority=int(merged["priority"]),
            timeout=float(merged["timeout"]) or None,
            policy=RetryPolicy(
                retry_limit=int(merged["retry_limit"]), retry_delay=float(merged["retry_delay"]),
                backoff=float(merged["backoff"]), max_retry_delay=float(merged["max_retry_delay"]),
                jitter=float(merged["jitter"]), retry_on=self.retry_on,
                no_retry_on=self.no_retry_on))
        self._resolved = (settings, options)
        return options

    def configured_options(self, settings: Settings) -> dict[str, Any]:
        """The decorator's options (subclasses add their own settings before ``[tasks.NAME]``)."""
        return {k: v for k, v in self.options.items() if v is not None}

    def prepare(self, task: RunnerTask, options: TaskOptions | None = None) -> None:
        """Fill the options a caller did not give from the resolved ones (``options``
        when the caller resolved them already), once those it gave are checked.

        Raises:
            InvalidArgument: an option of the call is out of range; nothing was written.
        """
        check_call(task)
        options = options or self.resolve()
        if task.retries is None:
            task.retries = options.policy.retry_limit
        if task.priority is None:
            task.priority = options.priority
        if task.timeout is None:
            task.timeout = options.timeout
        if not task.queue:
            task.queue = options.queue
