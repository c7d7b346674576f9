"""Options given to one call (``add.s(1, priority=5)``, ``add.schedule((1,), delay=60)``),
checked before anything is written, in the words the CLI uses for ``--delay`` and ``--priority``.

huey takes them as given: ``priority=1.5`` was written as 1, ``"high"`` and ``2**63`` failed
in the database driver, ``delay=inf`` or ``1e12`` in ``datetime``. A negative delay still
runs the job at once, as in huey: it is what ``target - time.time()`` gives once the target
has passed (the CLI refuses ``--delay -1``, typed by hand). The rules are here, once:
:func:`check_due` where huey turns a delay into a due time (``s()`` and ``schedule()``,
by :class:`CheckedCalls`), :func:`check_call` on every Task enqueued and the pipeline
steps it brings. A refusal is :class:`~runner.errors.InvalidArgument`.

Also here: which of huey's call options a task's own parameters shadow
(:data:`CALL_OPTIONS`, :func:`named_parameters`), and whether the function can take
a call of a given shape at all (:func:`call_problem`).
"""

from __future__ import annotations

import datetime
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from huey.api import Task, TaskWrapper

from runner.errors import InvalidArgument

#: Longest delay accepted (100 years): later times do not fit a datetime everywhere.
MAX_DELAY = 100 * 365.25 * 86400
#: SQLite's INTEGER range, which every backend keeps a priority in.
PRIORITY_RANGE = (-(2**63), 2**63 - 1)
#: Most retries of one call: its attempts (one more) still fit the same range.
MAX_RETRIES = 2**63 - 2


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def seconds(label: str, value: Any, *, or_datetime: bool = False,
            past: bool = False) -> float:
    """A number of seconds (or a timedelta): 0 to :data:`MAX_DELAY`, so not nan or inf;
    from ``-MAX_DELAY`` with ``past`` (a time that may have passed: due at once).

    Raises:
        InvalidArgument: naming ``label`` and the value.
    """
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    low = -MAX_DELAY if past else 0
    # A comparison, not float(): an int too big for a float is out of range, not an error.
    if not _number(value) or not low <= value <= MAX_DELAY:
        also = " or a datetime" if or_datetime else ""
        raise InvalidArgument(f"{label} {value!r}: expected seconds between {low:.0f} and "
                              f"{MAX_DELAY:.0f} (100 years){also}; nothing was written")
    return float(value)


def whole(label: str, value: Any, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` (not a bool, not a float that looks whole).

    Raises:
        InvalidArgument: naming ``label`` and the value.
    """
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidArgument(f"{label} {value!r}: expected a whole number between {low} and "
                              f"{high}; nothing was written")
    return value


def check_due(task_name: str, eta: Any, delay: Any) -> None:
    """The due time of one call: ``delay`` seconds (or a timedelta) or an ``eta`` datetime.

    A negative delay (a due time already passed) runs the job at once, as in huey.
    """
    if delay is not None:
        seconds(f"task '{task_name}': delay", delay, past=True)
    if eta is not None and not isinstance(eta, datetime.datetime):
        raise InvalidArgument(f"task '{task_name}': eta {eta!r}: expected a datetime; nothing "
                              "was written")


def check_call(task: Task) -> None:
    """The options a Task holds for its call (None: not given), and those of the steps and
    error handlers it brings (``.then()``, ``.error()``): all written with it.

    Raises:
        InvalidArgument: the first option out of range, named with its task.
    """
    if (task.priority is None and task.retries is None and not task.retry_delay
            and not task.retry_backoff and task.timeout is None and task.expires is None
            and task.eta is None and task.on_complete is None and task.on_error is None):
        return  # a plain call gives none (huey's 0 for the retry delays): most enqueues
    for step in _steps(task):
        wrapper = getattr(step, "wrapper", None)
        label = f"task '{getattr(wrapper, 'task_name', step.name)}': "
        if step.priority is not None:
            whole(label + "priority", step.priority, *PRIORITY_RANGE)
        if step.retries is not None:
            whole(label + "retries", step.retries, 0, MAX_RETRIES)
        if step.retry_delay is not None:
            seconds(label + "retry_delay", step.retry_delay)
        backoff = step.retry_backoff
        if backoff is not None and not (_number(backoff) and 0 <= backoff < float("inf")):
            raise InvalidArgument(f"{label}retry_backoff {backoff!r}: expected a finite number "
                                  ">= 0; nothing was written")
        if step.timeout is not None:
            seconds(label + "timeout", step.timeout)
        if step.expires is not None and not isinstance(step.expires, datetime.datetime):
            seconds(label + "expires", step.expires, or_datetime=True)
        if step.eta is not None and not isinstance(step.eta, datetime.datetime):
            raise InvalidArgument(f"{label}eta {step.eta!r}: expected a datetime; nothing was "
                                  "written")


def _steps(task: Task) -> Iterator[Task]:
    pending = [task]
    while pending:
        step = pending.pop()
        yield step
        pending += [t for t in (step.on_complete, step.on_error) if t is not None]


class CheckedCalls(TaskWrapper):
    """huey's ``s()`` and ``schedule()``, the due time checked before huey reads it (huey
    turns a delay into a datetime at once: inf, nan or 1e12 failed there)."""

    task_name: str

    def s(self, *args: Any, **kwargs: Any) -> Task:
        if kwargs:
            check_due(self.task_name, kwargs.get("eta"), kwargs.get("delay"))
        return super().s(*args, **kwargs)

    def schedule(self, args: Any = None, kwargs: Any = None, eta: Any = None, delay: Any = None,
                 **options: Any) -> Any:
        if eta is None and delay is None and isinstance(args, (int, float,
                                                                 datetime.timedelta)):
            check_due(self.task_name, None, args)  # huey's schedule(60): the delay given first
        else:
            check_due(self.task_name, eta, delay)
        return super().schedule(args, kwargs, eta, delay, **options)


#: The keywords huey's ``TaskWrapper.s()`` takes out of a call as the job's options.
CALL_OPTIONS = frozenset({"eta", "delay", "id", "retries", "retry_delay", "retry_backoff",
                          "priority", "expires", "timeout"})


def named_parameters(func: Callable[..., Any]) -> frozenset[str]:
    """The parameters a call can pass ``func`` by name (not a ``**kwargs`` catch-all)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(p.name for p in params
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


#: Shapes of call remembered per task (a task called in more ways is checked each time).
SHAPES_KEPT = 64


def call_problem(func: Callable[..., Any], context: bool,
                  shape: tuple[int, tuple[str, ...]]) -> str | None:
    """Why ``func`` cannot take a call of ``shape``, or None (also when it has no
    signature to tell): binding depends only on how many arguments and which keywords."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    count, names = shape
    keywords = dict.fromkeys(names)
    if context and "task" in signature.parameters:
        keywords.setdefault("task")  # huey hands the task in when it runs
    try:
        signature.bind(*([None] * count), **keywords)
    except TypeError as exc:
        name = getattr(func, "__name__", "the function")
        return f"{name}{signature} cannot take this call: {exc}"
    return None
