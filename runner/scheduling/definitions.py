"""Periodic tasks: the ``@scheduled_task`` decorator, the schedule registry, settings overrides.

A scheduled task is a normal task (every task option applies to each run) plus a
:class:`ScheduleDef` in the process-wide :data:`registry`. The scheduler thread
(:mod:`runner.scheduling.scheduler`) syncs the registry, with ``[schedules.NAME]`` overrides
from settings.toml, into the ``runner_schedule`` table and fires it from there.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

from runner.config import Settings
from runner.errors import ConfigError, InvalidSchedule
from runner.registry import task
from runner.scheduling import cron, misfire
from runner.sections import OVERLAP_POLICIES, ScheduleOverride
from runner.task import RunnerTaskWrapper

#: Seconds a slot may be late and still run under ``misfire="skip"``.
DEFAULT_GRACE = 60.0
#: Most catch-up runs under ``misfire="all"``.
DEFAULT_MAX_CATCHUP = 100
#: Keys a ``[schedules.NAME]`` table may set.
OVERRIDE_KEYS = tuple(f.name for f in fields(ScheduleOverride))


@dataclass(frozen=True)
class ScheduleDef:
    """One schedule: when a task runs, and what happens when runs are missed or overlap."""

    name: str
    """Schedule name; also the task's name."""
    cron: str
    """Cron expression (5 fields, or 6 with seconds first, or an ``@alias``)."""
    timezone: str | None = None
    """IANA time zone; None means ``[runner] timezone``."""
    misfire: str = "once"
    """After downtime: ``skip``, ``once`` (one catch-up run) or ``all`` (each missed slot)."""
    max_catchup: int = DEFAULT_MAX_CATCHUP
    """Cap on catch-up runs under ``misfire="all"``."""
    grace: float = DEFAULT_GRACE
    """Seconds a slot may be late and still count as on time (matters under ``skip``)."""
    overlap: str = "skip"
    """``skip`` (no run while one waits or runs), ``allow``, ``queue_one`` (one waiting,
    started once the running one has ended: the task runs one job at a time)."""
    jitter: float = 0.0
    """Random delay, up to this many seconds, added to each run's start."""
    args: tuple[Any, ...] = ()
    """Positional arguments of every run."""
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of every run."""
    enabled: bool = True
    """False (``[schedules.NAME] enabled = false``) keeps the schedule from firing."""
    wrapper: RunnerTaskWrapper | None = field(default=None, compare=False, repr=False)
    """The task each run executes."""

    @property
    def tz(self) -> str:
        """The time zone in force (``UTC`` until settings fill it)."""
        return "UTC" if self.timezone is None else self.timezone

    @property
    def spec(self) -> cron.CronSpec:
        """The parsed expression (``H`` fields hash on the schedule name)."""
        return parse_spec(self.cron, self.tz, self.name)

    def validate(self) -> ScheduleDef:
        """Check every option; returns self.

        Raises:
            InvalidSchedule: naming the schedule and the option.
        """
        where = f"schedule {self.name!r}"
        if not isinstance(self.cron, str):  # not for the cached parse: it may be unhashable
            cron.parse(self.cron, tz=self.tz, name=self.name)
        self.spec  # noqa: B018 - parsing validates expression and time zone
        if self.misfire not in misfire.POLICIES:
            raise InvalidSchedule(f"{where}: misfire must be one of {', '.join(misfire.POLICIES)}, "
                                  f"got {self.misfire!r}")
        if self.overlap not in OVERLAP_POLICIES:
            raise InvalidSchedule(f"{where}: overlap must be one of "
                                  f"{', '.join(OVERLAP_POLICIES)}, got {self.overlap!r}")
        if not _whole(self.max_catchup) or self.max_catchup < 0:
            raise InvalidSchedule(f"{where}: max_catchup must be a whole number >= 0, "
                                  f"got {self.max_catchup!r}")
        for key in ("grace", "jitter"):
            value = getattr(self, key)
            if not _number(value) or value < 0:
                raise InvalidSchedule(f"{where}: {key} must be a number >= 0, got {value!r}")
            if not math.isfinite(value):
                raise InvalidSchedule(f"{where}: {key} must be a finite number of seconds, "
                                      f"got {value!r}")
        if not isinstance(self.enabled, bool):
            raise InvalidSchedule(f"{where}: enabled must be true or false")
        try:
            pickle.dumps((tuple(self.args), dict(self.kwargs)), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise InvalidSchedule(f"{where}: args/kwargs cannot be serialized: {exc}") from None
        return self


@lru_cache(maxsize=4096)
def parse_spec(expression: str, tz: str, name: str) -> cron.CronSpec:
    """Parse (and cache) a schedule's expression; ``H`` hashes on ``name``."""
    return cron.parse(expression, tz=tz, name=name)


class ScheduleRegistry:
    """The schedules defined in code, by name."""

    def __init__(self) -> None:
        self._defs: dict[str, ScheduleDef] = {}

    def add(self, definition: ScheduleDef) -> None:
        """Register a schedule; the same function defined again (re-import) replaces it.

        Raises:
            InvalidSchedule: another function already uses the name.
        """
        old = self._defs.get(definition.name)
        if old is not None and _origin(old) != _origin(definition):
            raise InvalidSchedule(f"schedule {definition.name!r} is defined twice "
                                  f"({_origin(old)} and {_origin(definition)})")
        self._defs[definition.name] = definition

    def get(self, name: str) -> ScheduleDef | None:
        """The schedule named ``name``, or None."""
        return self._defs.get(name)

    def all(self) -> list[ScheduleDef]:
        """Every registered schedule, by name."""
        return [self._defs[name] for name in sorted(self._defs)]


#: The process-wide registry ``@scheduled_task`` adds to.
registry = ScheduleRegistry()


def scheduled_task(*, cron: str, name: str | None = None, timezone: str | None = None,
                   misfire: str = "once", max_catchup: int = DEFAULT_MAX_CATCHUP,
                   grace: float = DEFAULT_GRACE, overlap: str = "skip", jitter: float = 0.0,
                   args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None,
                   queue: str | None = None, priority: int | None = None,
                   retry_limit: int | None = None, max_retries: int | None = None,
                   retry_delay: float | None = None, backoff: float | None = None,
                   max_retry_delay: float | None = None, timeout: float | None = None,
                   retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
                   no_retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
                   on_failure: Callable[..., Any] | None = None,
                   concurrency: int | None = None, rate_limit: str | None = None,
                   unique: bool = False, unique_key: str | Callable[..., Any] | None = None,
                   unique_for: float | None = None, unique_states: Sequence[str] | None = None,
                   ) -> Callable[[Callable[..., Any]], RunnerTaskWrapper]:
    """Make a function (plain or ``async def``) a task that runs on a cron schedule.

    The result is a normal task (call it to enqueue an extra run). Each slot is fired
    exactly once by whichever ``run.py`` scheduler gets there first.

    Args:
        cron: 5 fields, 6 with seconds first, or ``@hourly``/``@daily``/...; ``H`` spreads.
        name: schedule and task name (default: the function's name).
        timezone: IANA zone the expression is read in (default ``[runner] timezone``).
        misfire: after downtime, ``skip``, ``once`` (default) or ``all`` missed slots.
        max_catchup: cap on catch-up runs under ``all``.
        grace: seconds a slot may be late and still run under ``skip``.
        overlap: ``skip`` (default), ``allow`` or ``queue_one`` (one run waits behind the
            running one; the task's jobs run one at a time).
        jitter: random delay up to this many seconds before each run starts.
        args: positional arguments of each run.
        kwargs: keyword arguments of each run.
        queue, priority, retry_limit, max_retries, retry_delay, backoff, max_retry_delay,
        timeout, retry_on, no_retry_on, on_failure, concurrency, rate_limit, unique,
        unique_key, unique_for, unique_states: as for :func:`runner.task`. A slot whose
        run's unique key is held by a live job is skipped, and its record says by which.

    Raises:
        InvalidSchedule: a bad expression, time zone or option, naming the schedule.
    """

    def decorate(fn: Callable[..., Any]) -> RunnerTaskWrapper:
        where = f"schedule {name or fn.__name__!r}"
        # args=(7) is the int 7 and args=("feed") a string of letters: refuse both.
        if isinstance(args, str | bytes) or not isinstance(args, Iterable):
            raise InvalidSchedule(f"{where}: args must be a list or tuple of arguments, "
                                  f"got {args!r}")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise InvalidSchedule(f"{where}: kwargs must be a dict, got {kwargs!r}")
        definition = ScheduleDef(
            name=name or fn.__name__, cron=cron, timezone=timezone, misfire=misfire,
            max_catchup=max_catchup, grace=grace, overlap=overlap, jitter=jitter,
            args=tuple(args), kwargs=dict(kwargs or {})).validate()
        wrapper = task(name=definition.name, queue=queue, priority=priority,
                       retry_limit=retry_limit, max_retries=max_retries,
                       retry_delay=retry_delay, backoff=backoff,
                       max_retry_delay=max_retry_delay, timeout=timeout, retry_on=retry_on,
                       no_retry_on=no_retry_on, on_failure=on_failure,
                       concurrency=concurrency, rate_limit=rate_limit, unique=unique,
                       unique_key=unique_key, unique_for=unique_for,
                       unique_states=unique_states)(fn)
        wrapper.overlap = definition.overlap
        registry.add(replace(definition, wrapper=wrapper))
        return wrapper

    return decorate


def effective_schedules(settings: Settings, definitions: Iterable[ScheduleDef] | None = None,
                        *, strict: bool = True) -> list[ScheduleDef]:
    """The schedules with ``[schedules.NAME]`` overrides and the default time zone applied.

    Args:
        settings: where the overrides and ``[runner] timezone`` come from.
        definitions: the schedules (default: the whole registry).
        strict: reject overrides naming a schedule outside ``definitions``.

    Raises:
        ConfigError: an unknown schedule name or key in ``[schedules]``.
        InvalidSchedule: an override makes a schedule invalid (names the schedule).
    """
    defs = list(registry.all() if definitions is None else definitions)
    overrides = schedule_overrides(settings)
    known = {d.name for d in defs}
    where = settings.path or "settings"
    for name in overrides if strict else ():
        if name not in known:
            raise ConfigError(f"{where}: [schedules.{name}] names no schedule defined in code "
                              f"(known: {', '.join(sorted(known)) or 'none'})")
    result = []
    for d in defs:
        changes = overrides.get(d.name, {})
        merged = replace(d, **changes)
        if merged.timezone is None:
            merged = replace(merged, timezone=settings.runner.timezone)
        try:
            result.append(merged.validate())
        except InvalidSchedule as exc:
            if not changes:  # the code's own definition: its error names it
                raise
            # The definition was valid when decorated: the settings broke it.
            raise InvalidSchedule(f"{where}: [schedules.{d.name}] {', '.join(sorted(changes))}: "
                                  f"{exc}") from None
    return result


def schedule_overrides(settings: Settings) -> dict[str, dict[str, Any]]:
    """``[schedules.NAME]`` tables (typed and checked when the settings were loaded)."""
    return {name: override.as_options() for name, override in settings.schedules.items()}


def _origin(definition: ScheduleDef) -> str:
    fn = getattr(definition.wrapper, "func", None)
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
