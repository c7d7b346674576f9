"""The ``@task`` decorator, the process-wide huey instance it registers with, and its tasks."""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, overload

from runner.config import Settings
from runner.errors import ConfigError
from runner.runner_huey import Result, RunnerHuey
from runner.store.factory import pointed_at
from runner.task import RunnerTaskWrapper
from runner.task_options import (
    check_on_failure,
    check_options,
    collect_options,
    exception_classes,
    task_flow,
)
from runner.uniqueness import unique_spec

F = TypeVar("F", bound=Callable[..., Any])

#: The process-wide instance: task modules register here, run.py consumes from it.
huey = RunnerHuey("runner")


def get_huey() -> RunnerHuey:
    """The process-wide :class:`RunnerHuey`."""
    return huey


def enqueue_many(tasks: Iterable[Any], *, batch_size: int = 1000) -> list[Result]:
    """Enqueue many task calls (``my_task.s(...)``) at once, one transaction per batch.

    Every call is checked to serialize first (a bad one is named by position and
    nothing is enqueued); each batch is written whole or not at all, honouring
    ``queue_size``. Returns one :class:`huey.api.Result` per call, in order.
    """
    return get_huey().enqueue_many(tasks, batch_size=batch_size)


def configure(settings: Settings | None = None, *, database: str | None = None) -> Settings:
    """Point this process at other settings or another database file.

    Local scripts normally need nothing: the settings are found on first use as
    the worker finds them (``$RUNNER_SETTINGS``, the service's environment file,
    settings.toml). Returns the settings now in force.
    """
    huey = get_huey()
    chosen = settings or huey.settings
    if database is not None:
        chosen = chosen.with_database(database)
    huey.configure(chosen)
    return chosen


def runner_for(settings: Settings | None = None, database: str | os.PathLike[str] | None = None,
               *, huey: RunnerHuey | None = None) -> RunnerHuey:
    """A runner (default the process-wide one) pointed at ``settings`` and ``database``.

    The control verbs use it to act on the database a front end has open
    (``database`` is that store's :attr:`~runner.store.backend.Store.address`); the
    runner is reconfigured only when it points elsewhere, so its open storage is kept.
    """
    runner = huey or get_huey()
    chosen = settings or runner.settings
    if database is not None:
        chosen = pointed_at(chosen, os.fspath(database))
    if chosen != runner.settings:
        runner.configure(chosen)
    return runner


def import_task_modules(modules: Sequence[str]) -> None:
    """Import the configured task modules, naming the one that fails.

    Raises:
        ConfigError: a module failed to import; its ``detail`` is the traceback from the
            module's own frames on (see :func:`_module_traceback`).
    """
    for name in modules:
        try:
            importlib.import_module(name)
        except ConfigError as exc:  # the runner's words, said at a line of the module
            if exc.detail is None:
                exc.detail = _module_traceback(exc)
            raise
        except Exception as exc:
            raise ConfigError(
                f"[runner] imports: cannot import task module '{name}': "
                f"{type(exc).__name__}: {exc}", detail=_module_traceback(exc)) from exc


#: Frames a user has no use for: the runner's own (the import above, a decorator's
#: checks: its message says what they found) and importlib's.
_RUNNER_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _module_traceback(exc: BaseException) -> str | None:
    """The traceback of a failed import of a task module with the frames of the user's
    code only, so it starts at the module's own line (chained exceptions included); None
    when no frame of it is in there (a module that is not there)."""
    summary = traceback.TracebackException.from_exception(exc)
    shown = False
    pending, seen = [summary], set()
    while pending:
        each = pending.pop()
        if id(each) in seen:
            continue
        seen.add(id(each))
        each.stack = traceback.StackSummary.from_list(
            [frame for frame in each.stack if not _runner_frame(frame.filename)])
        # A SyntaxError has no frame of the module, but names its file and line.
        shown = shown or bool(each.stack) or getattr(each, "filename", None) is not None
        pending += [e for e in (each.__cause__, each.__context__) if e is not None]
    return "".join(summary.format()).rstrip("\n") if shown else None


def _runner_frame(filename: str) -> bool:
    return (filename.startswith(("<frozen importlib", _RUNNER_DIR))
            or filename == importlib.__file__)


def registered_tasks(huey: RunnerHuey | None = None) -> dict[str, RunnerTaskWrapper]:
    """Every task registered with ``huey`` (default: the process-wide one), by full name."""
    return (huey or get_huey()).task_registry.all()


@overload
def task(func: Callable[..., Any], /) -> RunnerTaskWrapper: ...


@overload
def task(*, name: str | None = None, queue: str | None = None, priority: int | None = None,
         retry_limit: int | None = None, max_retries: int | None = None,
         retry_delay: float | None = None, backoff: float | None = None,
         max_retry_delay: float | None = None, jitter: float | None = None,
         timeout: float | None = None,
         retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
         no_retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
         on_failure: Callable[..., Any] | None = None,
         concurrency: int | None = None,
         concurrency_key: Callable[..., Any] | None = None,
         rate_limit: str | None = None, unique: bool = False,
         unique_key: str | Callable[..., Any] | None = None, unique_for: float | None = None,
         unique_states: Sequence[str] | None = None,
         ) -> Callable[[Callable[..., Any]], RunnerTaskWrapper]: ...


def task(func: Callable[..., Any] | None = None, /, *, name: str | None = None,
         queue: str | None = None, priority: int | None = None,
         retry_limit: int | None = None, max_retries: int | None = None,
         retry_delay: float | None = None, backoff: float | None = None,
         max_retry_delay: float | None = None, jitter: float | None = None,
         timeout: float | None = None,
         retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
         no_retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
         on_failure: Callable[..., Any] | None = None,
         concurrency: int | None = None,
         concurrency_key: Callable[..., Any] | None = None,
         rate_limit: str | None = None, unique: bool = False,
         unique_key: str | Callable[..., Any] | None = None, unique_for: float | None = None,
         unique_states: Sequence[str] | None = None) -> Any:
    """Make a function (plain or ``async def``) a task.

    Calling the result enqueues a job into the configured database and returns
    a huey ``Result``; ``.call_local()`` runs it inline; ``.schedule(delay=...)``
    and ``.s(...).then(...)`` work as in huey.

    Args:
        name: stable task name (default: the function's name); ``[tasks.NAME]`` uses it.
        queue: queue name (default ``"default"``).
        priority: higher runs first.
        retry_limit: retries after the first attempt (``max_retries`` is the same).
        retry_delay: seconds before the first retry.
        backoff: multiplier per retry (default 2).
        max_retry_delay: cap on one delay.
        jitter: random extra delay, as a fraction of the delay.
        timeout: seconds an attempt may run; 0 disables.
        retry_on: only these exception classes are retried.
        no_retry_on: these exception classes fail the job at once.
        on_failure: called (a plain function) or enqueued (a task) with a
            :class:`~runner.tasks.Failure` once the job is dead.
        concurrency: most jobs of this task running at once, across every worker
            of the database (per key with ``concurrency_key``).
        concurrency_key: a callable of the task's arguments; jobs whose keys are
            equal share ``concurrency`` (e.g. one job per user at a time).
        rate_limit: most starts per period, e.g. ``"100/m"``, ``"5/s"``,
            ``"100/m burst 20"``; enforced when jobs are claimed.
        unique: a call whose task and arguments match a job that still counts
            writes nothing and returns that job's ``Result``.
        unique_key: the key instead of task and arguments: a string, or a
            function of the call's arguments returning one (implies unique).
        unique_for: seconds a job counts (default: as long as it is in a
            counting state).
        unique_states: the states that count: ``waiting``, ``scheduled``,
            ``running`` (the default), or job states such as ``completed``.
    """
    options = collect_options(
        queue=queue, priority=priority, retry_limit=retry_limit, max_retries=max_retries,
        retry_delay=retry_delay, backoff=backoff, max_retry_delay=max_retry_delay,
        jitter=jitter, timeout=timeout)

    def decorate(fn: Callable[..., Any]) -> RunnerTaskWrapper:
        task_name = name or fn.__name__
        check_options(task_name, options)
        check_on_failure(task_name, on_failure)
        flow = task_flow(task_name, concurrency, concurrency_key, rate_limit)
        spec = unique_spec(task_name, unique=unique, unique_key=unique_key,
                           unique_for=unique_for, unique_states=unique_states, func=fn)
        wrapper = RunnerTaskWrapper(
            huey, fn, name=name, options=dict(options),
            retry_on=exception_classes(task_name, "retry_on", retry_on),
            no_retry_on=exception_classes(task_name, "no_retry_on", no_retry_on),
            on_failure=on_failure, flow=flow)
        wrapper.unique = spec
        return wrapper

    if func is not None:
        return decorate(func)
    return decorate

