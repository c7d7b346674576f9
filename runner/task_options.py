"""The options of a task's decorator, checked when the function is decorated.

``@task``, huey's ``@huey.task`` and ``@event_handler`` take the same options;
what could never work (a wrong type, a negative delay, a value past the bound
``[tasks.NAME]`` has for the same key: :mod:`runner.setting_bounds`) is refused
then, naming the task, rather than when a job runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from runner.errors import ConfigError
from runner.flow import parse_rate
from runner.sections import QUEUE_NAME, TaskSection
from runner.setting_bounds import INT64
from runner.task import TaskFlow


def task_flow(name: str, concurrency: int | None, concurrency_key: Callable[..., Any] | None,
              rate_limit: str | None) -> TaskFlow | None:
    """The decorator's flow options, checked at decoration time.

    Raises:
        ConfigError: naming the task and the option.
    """
    if concurrency is None and concurrency_key is None and rate_limit is None:
        return None
    if concurrency is not None and (not isinstance(concurrency, int)
                                    or isinstance(concurrency, bool) or concurrency < 1):
        raise ConfigError(f"task '{name}': concurrency must be a whole number >= 1, "
                          f"got {concurrency!r}")
    check_bound(name, "concurrency", concurrency)
    if concurrency_key is not None:
        if not callable(concurrency_key):
            raise ConfigError(f"task '{name}': concurrency_key must be a callable of the "
                              f"task's arguments, got {concurrency_key!r}")
        if concurrency is None:
            raise ConfigError(f"task '{name}': concurrency_key needs concurrency= (how many "
                              "jobs per key may run at once)")
    rate = None
    if rate_limit is not None:
        try:
            rate = parse_rate(rate_limit)
        except (ValueError, AttributeError, TypeError) as exc:
            raise ConfigError(f"task '{name}': rate_limit {exc}") from None
    return TaskFlow(concurrency or 0, concurrency_key, rate)


def collect_options(*, queue: str | None, priority: int | None, retry_limit: int | None,
                    max_retries: int | None, retry_delay: float | None, backoff: float | None,
                    max_retry_delay: float | None, jitter: float | None,
                    timeout: float | None) -> dict[str, Any]:
    """A decorator's task options as one dict (``max_retries`` is ``retry_limit``)."""
    if retry_limit is not None and max_retries is not None and retry_limit != max_retries:
        raise TypeError("retry_limit and max_retries are the same option; give one")
    return {"queue": queue, "priority": priority,
            "retry_limit": retry_limit if retry_limit is not None else max_retries,
            "retry_delay": retry_delay, "backoff": backoff,
            "max_retry_delay": max_retry_delay, "jitter": jitter, "timeout": timeout}


def check_options(name: str, options: dict[str, Any]) -> None:
    """Reject decorator options that could never work, at decoration time."""
    for key in ("retry_limit", "priority"):
        value = options.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"task '{name}': {key} must be a whole number, got {value!r}")
    for key in ("retry_delay", "timeout", "max_retry_delay", "jitter", "backoff"):
        value = options.get(key)
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ConfigError(f"task '{name}': {key} must be a number >= 0, got {value!r}")
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"task '{name}': {key} must be a finite number of seconds"
                              f"{' (0: no timeout)' if key == 'timeout' else ''}, got {value!r}")
    if options.get("retry_limit") is not None and options["retry_limit"] < 0:
        raise ConfigError(f"task '{name}': retry_limit must not be negative")
    for key, value in options.items():
        check_bound(name, key, value)
    queue = options.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise ConfigError(f"task '{name}': queue must be a non-empty string, got {queue!r}")
    if queue is not None and not QUEUE_NAME.match(queue):
        # The settings and `queues pause` refuse it too: the queue could never be configured.
        raise ConfigError(f"task '{name}': {queue!r} is not a valid queue name (letters, "
                          "digits and _ . : -, at most 64)")


def check_bound(name: str, key: str, value: Any) -> None:
    """Refuse a number past the bound ``[tasks.NAME]`` has for ``key`` (a wait that long
    overflows the worker's timers; a count that large no store keeps)."""
    most = TaskSection.MAXIMA.get(key)
    if most is None or not isinstance(value, (int, float)):
        return
    if value > most.value:
        raise ConfigError(f"task '{name}': {key} must be at most {most}, got {value!r}")
    if key == "priority" and value < -INT64:
        raise ConfigError(f"task '{name}': priority must be at least {-INT64}, got {value!r}")


def exception_classes(name: str, key: str, value: Any) -> tuple[type[BaseException], ...]:
    """``retry_on`` / ``no_retry_on`` as a tuple of exception classes.

    Raises:
        ConfigError: anything else (a class name as a string, a list): the worker's
            ``isinstance`` would fail on every error of the job instead.
    """
    classes = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
        raise ConfigError(f"task '{name}': {key} must be an exception class or a tuple of "
                          f"them, got {value!r}")
    return classes


def check_on_failure(name: str, on_failure: Any) -> None:
    """Refuse an ``on_failure`` that the worker could not call once the job is dead."""
    if on_failure is not None and not callable(on_failure):
        raise ConfigError(f"task '{name}': on_failure must be a function or a task, "
                          f"got {on_failure!r}")
