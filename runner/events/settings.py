"""The ``[events]`` section of settings.toml, validated into :class:`EventSettings`.

``runner.config`` keeps ``[events]`` as a raw table; this module owns its keys::

    [events]
    dedupe_window = 3600        # seconds an idempotency key suppresses repeats
    emit_deadline = 15          # seconds emit() retries a locked database
    dispatch_queue = "default"  # queue of the built-in fan-out job
    dispatch_priority = 0       # priority of the fan-out job

    [events.patterns."user.*"]  # options for handlers subscribed with this pattern
    queue = "events"

    [events.handlers.handle_signup]   # options for one handler (wins over patterns)
    max_retries = 5
    timeout = 10

Handler options resolve as: ``[worker]`` defaults, the decorator, then
``[events.patterns.P]``, then ``[events.handlers.NAME]``, then ``[tasks.NAME]``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from runner.config import Settings, TaskOverride, parse_task_override
from runner.errors import ConfigError
from runner.event_patterns import check_pattern

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class EventSettings:
    """What ``[events]`` configures; every field has a working default."""

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


_cache: tuple[Settings, EventSettings] | None = None
_cache_lock = threading.Lock()


def event_settings(settings: Settings) -> EventSettings:
    """The validated ``[events]`` of ``settings`` (cached per Settings object).

    Raises:
        ConfigError: an unknown key or a bad value, named (exit code 78).
    """
    global _cache
    cached = _cache
    if cached is not None and cached[0] is settings:
        return cached[1]
    parsed = parse_events(settings.extra.get("events", {}), where=settings.path or "settings")
    with _cache_lock:
        _cache = (settings, parsed)
    return parsed


def parse_events(raw: Mapping[str, Any], *, where: str = "settings") -> EventSettings:
    """Validate a raw ``[events]`` table."""
    scalars = {f.name: f for f in fields(EventSettings) if f.name not in ("patterns", "handlers")}
    values: dict[str, Any] = {}
    overrides: dict[str, dict[str, TaskOverride]] = {"patterns": {}, "handlers": {}}
    for key, value in raw.items():
        if key in overrides:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [events.{key}] must be a table of tables")
            for name, table in value.items():
                if key == "patterns":
                    try:
                        check_pattern(name)
                    except ConfigError as exc:
                        raise ConfigError(f"{where}: [events.patterns]: {exc}") from None
                overrides[key][name] = _override(table, f"{where}: [events.{key}.{name}]")
        elif key in scalars:
            values[key] = _number_or_name(key, value, f"{where}: [events] {key}")
        else:
            known = ", ".join([*scalars, "patterns", "handlers"])
            raise ConfigError(f"{where}: [events] unknown key '{key}' (known: {known})")
    return EventSettings(**values, patterns=overrides["patterns"],
                         handlers=overrides["handlers"])


def _number_or_name(key: str, value: Any, where: str) -> Any:
    if key == "dispatch_queue":
        if not isinstance(value, str) or not _QUEUE_NAME.match(value):
            raise ConfigError(f"{where}: expected a queue name, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if key == "dispatch_priority":
        if not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if value < 0:
        raise ConfigError(f"{where}: must not be negative, got {value!r}")
    return float(value)


def _override(table: Any, where: str) -> TaskOverride:
    return parse_task_override(table, where)
