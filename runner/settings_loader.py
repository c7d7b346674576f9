"""settings.toml plus environment overrides, loaded once into a frozen ``Settings``.

Every section is typed and validated at load (the sections are declared in
:mod:`runner.config`, :mod:`runner.sections` and :mod:`runner.service_sections`):
an unknown section or key, a wrong type or a bad value raises ``ConfigError``
naming the file, the section and the key, which ``run.py``, ``python -m runner``
and ``python -m tui`` turn into exit code 78.

Who reads what, and when:

* ``run.py`` and ``python -m runner`` call :func:`load_settings` at start-up (and
  again on SIGHUP); a bad file stops them with exit code 78.
* Local scripts that enqueue get the same settings lazily, on first use.
* Nothing below this module reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from runner.config import SETTINGS_ENV, DatabaseSection, RunnerSection, Settings, WorkerSection
from runner.errors import ConfigError
from runner.event_patterns import check_pattern
from runner.sections import (
    QUEUE_NAME,
    EventSettings,
    QueueSection,
    ScheduleOverride,
    TaskOverride,
    TaskSection,
)
from runner.service_sections import (
    HealthSection,
    LoggingSection,
    MetricsSection,
    RetentionSection,
    TuiSection,
)
from runner.settings_environment import apply_environment
from runner.settings_validation import build_section, check_settings
from runner.text_files import read_utf8

T = TypeVar("T")

_SECTIONS: dict[str, type] = {
    "runner": RunnerSection, "worker": WorkerSection, "database": DatabaseSection,
    "logging": LoggingSection, "metrics": MetricsSection, "health": HealthSection,
    "retention": RetentionSection, "tui": TuiSection}
#: Sections that are tables of named tables.
_NAMED = ("tasks", "events", "schedules", "queues")


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings.toml, apply environment overrides and validate everything.

    Args:
        path: the settings file; default ``$RUNNER_SETTINGS`` or ``./settings.toml``.
            A missing default file means built-in defaults; a missing named file
            is an error.
        environ: the environment to read overrides from (default ``os.environ``).

    Raises:
        ConfigError: naming the file, the key (and line where TOML gives it).
    """
    env = os.environ if environ is None else environ
    explicit = path is not None or SETTINGS_ENV in env
    file = Path(path if path is not None else env.get(SETTINGS_ENV, "settings.toml"))
    raw: dict[str, Any] = {}
    shown = str(file)
    if file.exists():
        try:
            raw = tomllib.loads(read_utf8(file))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{shown}: TOML syntax error: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{shown}: cannot read settings: {exc}") from None
        except ValueError as exc:  # not UTF-8, with the line and column
            raise ConfigError(f"{shown}: {exc}") from None
    elif explicit:
        raise ConfigError(f"{shown}: settings file not found")
    settings = parse_settings(raw, source=shown if file.exists() else None)
    return apply_environment(settings, env)


def parse_settings(raw: Mapping[str, Any], *, source: str | None = None) -> Settings:
    """Validate a parsed TOML document into :class:`Settings`.

    Raises:
        ConfigError: naming the section and key of the first problem.
    """
    where = source or "settings"
    sections: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            sections[key] = build_section(_SECTIONS[key], value, f"{where}: [{key}]")
        elif key == "tasks":
            sections[key] = _named_tables(value, where, "tasks", TaskSection)
        elif key == "schedules":
            sections[key] = _named_tables(value, where, "schedules", ScheduleOverride)
        elif key == "events":
            sections[key] = _parse_events(value, where)
        elif key == "queues":
            queues = _named_tables(value, where, "queues", QueueSection)
            for name in queues:
                if not QUEUE_NAME.match(name):
                    raise ConfigError(f"{where}: [queues.{name}] {name!r} is not a valid "
                                      "queue name")
            sections[key] = {"default": QueueSection(), **queues}
        else:
            known = ", ".join(sorted([*_SECTIONS, *_NAMED]))
            raise ConfigError(f"{where}: unknown section or key '{key}' (known: {known})")
    settings = Settings(path=source, **sections)
    check_settings(settings, where)
    return settings


def _named_tables(value: Any, where: str, section: str, cls: type[T]) -> dict[str, T]:
    """``[section.NAME]`` tables (``[tasks.NAME]``, ...): one ``cls`` per name."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{section}] must be a table of [{section}.NAME] tables")
    for name, table in value.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] {name} must be a [{section}.{name}] table")
    return {name: build_section(cls, table, f"{where}: [{section}.{name}]")
            for name, table in value.items()}


def _parse_events(value: Any, where: str) -> EventSettings:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [events] must be a table")
    scalars = {k: v for k, v in value.items() if k not in ("patterns", "handlers")}
    patterns = _named_tables(value.get("patterns", {}), where, "events.patterns", TaskOverride)
    for pattern in patterns:
        try:
            check_pattern(pattern)
        except ConfigError as exc:
            raise ConfigError(f"{where}: [events.patterns]: {exc}") from None
    handlers = _named_tables(value.get("handlers", {}), where, "events.handlers", TaskOverride)
    built: EventSettings = build_section(EventSettings, scalars, f"{where}: [events]",
                                  skip=("patterns", "handlers"))
    return replace(built, patterns=patterns, handlers=handlers)

