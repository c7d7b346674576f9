"""The typed sections of settings.toml that shape the jobs: tasks, queues, events, schedules.

Each is a frozen dataclass that :func:`runner.settings_loader.load_settings` builds from
its table at load: an unknown key or a wrong type is refused there (exit code
78 naming the file, section and key), and so is a bad value, through the
section's ``problems()``. The modules that use a section read it from the
``Settings`` object (``settings.tasks``, ``settings.queues``, ...) and never
parse a table again. ``[runner]``, ``[worker]`` and ``[database]`` are declared
in :mod:`runner.config`; ``[logging]``, ``[metrics]``, ``[health]``,
``[retention]`` and ``[tui]`` in :mod:`runner.service_sections`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from runner.flow import Rate, parse_rate
from runner.setting_bounds import COUNT, DAY, FACTOR, INT64, WHOLE, YEAR, Maxima

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

#: A problem found in a section: (key, why).
Problem = tuple[str, str]


@dataclass(frozen=True)
class TaskOverride:
    """``[tasks.NAME]`` (and ``[events.handlers.NAME]``, ...): options over a decorator's."""

    MAXIMA: ClassVar[Maxima] = {
        "timeout": YEAR, "priority": WHOLE, "retry_delay": YEAR, "retry_limit": COUNT,
        "backoff": FACTOR, "max_retry_delay": YEAR, "jitter": FACTOR}

    timeout: float | None = None
    priority: int | None = None
    retry_delay: float | None = None
    retry_limit: int | None = None
    backoff: float | None = None
    max_retry_delay: float | None = None
    jitter: float | None = None
    queue: str | None = None

    def as_options(self) -> dict[str, Any]:
        """The options that are set, as decorator keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def problems(self) -> list[Problem]:
        found = []
        if self.queue is not None and not QUEUE_NAME.match(self.queue):
            found.append(("queue", f"{self.queue!r} is not a valid queue name"))
        for key in ("timeout", "retry_delay", "retry_limit", "max_retry_delay", "jitter",
                    "backoff"):
            value = getattr(self, key)
            if value is not None and value < 0:
                found.append((key, f"must not be negative, got {value!r}"))
        if self.priority is not None and self.priority < -INT64 - 1:
            found.append(("priority", f"must be at least {-INT64 - 1}, got {self.priority!r}"))
        return found


#: ``[tasks.NAME]`` keys that are flow limits, applied at claim rather than at enqueue.
TASK_FLOW_KEYS = ("concurrency", "rate_limit")


@dataclass(frozen=True)
class TaskSection(TaskOverride):
    """``[tasks.NAME]``: a task's decorator options and flow limits, from settings.

    What Celery calls task annotations: an operator changes a task's queue,
    priority, retries, timeout or limits without a code change.
    """

    MAXIMA: ClassVar[Maxima] = {**TaskOverride.MAXIMA, "concurrency": COUNT}

    concurrency: int | None = None
    """Most jobs of the task running at once (per key when the task has a
    ``concurrency_key``); 0 lifts the decorator's limit."""
    rate_limit: str | None = None
    """Most starts per period ("5/s", "100/m burst 20"); "" lifts the decorator's."""

    def as_options(self) -> dict[str, Any]:
        """The enqueue-time options that are set (the flow limits apply at claim)."""
        return {k: v for k, v in super().as_options().items() if k not in TASK_FLOW_KEYS}

    @property
    def rate(self) -> Rate | None:
        """``rate_limit`` parsed (checked at load); None when unset or lifted."""
        return parse_rate(self.rate_limit) if self.rate_limit else None

    def problems(self) -> list[Problem]:
        found = super().problems()
        if self.concurrency is not None and self.concurrency < 0:
            found.append(("concurrency", f"must not be negative, got {self.concurrency!r}"))
        if self.rate_limit:
            try:
                parse_rate(self.rate_limit)
            except ValueError as exc:
                found.append(("rate_limit", str(exc)))
        return found


# -- [queues.NAME] ---------------------------------------------------------------------

ON_FULL = ("reject", "block", "drop_oldest")


@dataclass(frozen=True)
class QueueSection:
    """``[queues.NAME]``: one queue's share, limits and bound."""

    MAXIMA: ClassVar[Maxima] = {"weight": COUNT, "concurrency": COUNT, "burst": COUNT,
                                "max_size": COUNT, "block_timeout": DAY}

    weight: int = 1
    """Share of claims when several queues have due work (see README, Queues)."""
    concurrency: int = 0
    """Most jobs of this queue running at once across every worker (0 = unlimited)."""
    rate_limit: str = ""
    """Most starts per period, e.g. "100/m", "5/s", "100/m burst 20" ("" = none)."""
    burst: int = 0
    """Starts allowed back to back (0: the burst of ``rate_limit``, else 1); one that
    differs from a burst ``rate_limit`` writes is refused at load."""
    paused: bool = False
    """Jobs of a paused queue wait; running ones finish."""
    max_size: int | None = None
    """Most waiting jobs (None = ``[worker] queue_size``)."""
    on_full: str = "block"
    """What an enqueue into a full queue does: "reject", "block" or "drop_oldest"."""
    block_timeout: float = 30.0
    """Seconds ``on_full = "block"`` waits for room before raising QueueFull."""

    @property
    def rate(self) -> Rate | None:
        """``rate_limit`` parsed (checked at load), or None without one."""
        return parse_rate(self.rate_limit, self.burst) if self.rate_limit else None

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        if self.weight < 1:
            found.append(("weight", f"must be at least 1, got {self.weight!r}"))
        for key in ("concurrency", "burst"):
            if getattr(self, key) < 0:
                found.append((key, f"must not be negative, got {getattr(self, key)!r}"))
        if self.rate_limit:
            try:
                parse_rate(self.rate_limit, self.burst)
            except ValueError as exc:
                found.append(("rate_limit", str(exc)))
        if self.max_size is not None and self.max_size < 0:
            found.append(("max_size", f"must not be negative, got {self.max_size!r}"))
        if self.on_full not in ON_FULL:
            found.append(("on_full", f"must be one of {', '.join(ON_FULL)}, "
                                     f"got {self.on_full!r}"))
        if self.block_timeout < 0:
            found.append(("block_timeout", "must not be negative"))
        return found

    def bound(self, queue_size: int) -> int:
        """The most waiting jobs this queue holds (0: unbounded) under ``[worker] queue_size``."""
        return queue_size if self.max_size is None else self.max_size


# -- [events] and [schedules.NAME] -----------------------------------------------------


@dataclass(frozen=True)
class EventSettings:
    """``[events]``; every field has a working default."""

    MAXIMA: ClassVar[Maxima] = {"dedupe_window": YEAR, "emit_deadline": DAY,
                                "dispatch_priority": WHOLE}

    dedupe_window: float = 3600.0
    """Seconds during which a second emit with the same key returns the first event."""
    emit_deadline: float = 15.0
    """Seconds emit() retries a write-locked database before raising DatabaseLocked."""
    dispatch_queue: str = "default"
    """Queue of the built-in dispatch (fan-out) job; a worker must serve it."""
    dispatch_priority: int = 0
    """Priority of the dispatch job. Equal to the handlers' by default: a higher one
    would let a steady stream of emits starve the handlers of the worker."""
    patterns: Mapping[str, TaskOverride] = field(default_factory=dict)
    """``[events.patterns.PATTERN]``: options for handlers subscribed with PATTERN."""
    handlers: Mapping[str, TaskOverride] = field(default_factory=dict)
    """``[events.handlers.NAME]``: options for the handler named NAME."""

    def override(self, handler: str, pattern: str) -> dict[str, Any]:
        """Options ``[events]`` sets for one handler (pattern first, then handler)."""
        options: dict[str, Any] = {}
        if pattern in self.patterns:
            options.update(self.patterns[pattern].as_options())
        if handler in self.handlers:
            options.update(self.handlers[handler].as_options())
        return options

    def problems(self) -> list[Problem]:
        found = [(key, f"must not be negative, got {getattr(self, key)!r}")
                 for key in ("dedupe_window", "emit_deadline") if getattr(self, key) < 0]
        if self.dispatch_priority < -INT64 - 1:
            found.append(("dispatch_priority", f"must be at least {-INT64 - 1}, "
                                               f"got {self.dispatch_priority!r}"))
        if not QUEUE_NAME.match(self.dispatch_queue):
            found.append(("dispatch_queue", f"{self.dispatch_queue!r} is not a queue name"))
        return found


MISFIRE_POLICIES = ("skip", "once", "all")
OVERLAP_POLICIES = ("skip", "allow", "queue_one")


@dataclass(frozen=True)
class ScheduleOverride:
    """``[schedules.NAME]``: what an operator may change of a schedule without a deploy.

    The cron expression and time zone are checked against the schedule when a
    scheduler (or ``python -m runner check``) loads it.
    """

    MAXIMA: ClassVar[Maxima] = {"max_catchup": COUNT, "grace": YEAR, "jitter": DAY}

    cron: str | None = None
    timezone: str | None = None
    enabled: bool | None = None
    misfire: str | None = None
    max_catchup: int | None = None
    grace: float | None = None
    overlap: str | None = None
    jitter: float | None = None

    def as_options(self) -> dict[str, Any]:
        """The keys that are set, as ``ScheduleDef`` fields."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def problems(self) -> list[Problem]:
        found = []
        if self.misfire is not None and self.misfire not in MISFIRE_POLICIES:
            found.append(("misfire", f"must be one of {', '.join(MISFIRE_POLICIES)}, "
                                     f"got {self.misfire!r}"))
        if self.overlap is not None and self.overlap not in OVERLAP_POLICIES:
            found.append(("overlap", f"must be one of {', '.join(OVERLAP_POLICIES)}, "
                                     f"got {self.overlap!r}"))
        for key in ("max_catchup", "grace", "jitter"):
            value = getattr(self, key)
            if value is not None and value < 0:
                found.append((key, f"must not be negative, got {value!r}"))
        return found
