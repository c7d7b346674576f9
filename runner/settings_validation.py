"""What makes a loaded ``Settings`` wrong: unknown keys, wrong types and bad values.

One table is checked as it becomes its section (:func:`build_section`), and the
whole tree once more after the file and again after the environment overrides
(:func:`settings_problems`), because some rules span sections (a lease against
the heartbeat, a database URL against ``queue_type``) and an override has not
been through a table. Every problem becomes a ``ConfigError`` naming where it is.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from runner.config import (
    POSTGRES_URL_PREFIXES,
    QUEUE_TYPES,
    REDIS_URL_PREFIXES,
    SERIALIZERS,
    SYNCHRONOUS,
    RunnerSection,
    Settings,
)
from runner.errors import ConfigError
from runner.sections import LOG_LEVELS, QUEUE_NAME, Problem
from runner.setting_bounds import too_large

#: Other names a key is taken by (in the file and in ``WORKER_*_<KEY>``), and the key.
ALIASES = {"max_retries": "retry_limit", "retries": "retry_limit",
           "concurrency": "max_concurrent_tasks"}


def build_section(cls: type, table: Any, where: str, *, skip: tuple[str, ...] = ()) -> Any:
    """One section's table as ``cls``: unknown keys, wrong types and bad values refused."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {type(table).__name__}")
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = key if key in known else ALIASES.get(key, key)
        if name not in known:
            # Each alias the section takes follows its key (retry_limit, max_retries, retries).
            names = ", ".join([n for k in known for n in (k, *_aliases_of(k, known))] + [*skip])
            raise ConfigError(f"{where}: unknown key '{key}' (known: {names})")
        values[name] = _coerce(value, known[name].type, f"{where} {key}")
    section = cls(**values)
    problems: list[Problem] = section.problems() if hasattr(section, "problems") else []
    problems += too_large(section)
    if problems:
        key, why = problems[0]
        raise ConfigError(f"{where} {key} {why}")
    return section


def _aliases_of(key: str, known: Mapping[str, Any]) -> list[str]:
    return [alias for alias, name in ALIASES.items() if name == key and alias not in known]


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    kind = str(annotation)
    if kind.startswith("bool"):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(value, bool) and "bool" not in kind:
        raise ConfigError(f"{where}: expected {kind.replace(' | None', '')}, got a boolean")
    if kind.startswith("int"):
        if not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if kind.startswith("float"):
        if not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if kind.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if kind.startswith("tuple"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    return value


def _redis_problems(s: Settings) -> list[tuple[str, str, str]]:
    """What is wrong with the Redis settings (checked when ``queue_type`` is redis)."""
    runner, found = s.runner, []
    if not runner.redis_url.startswith(REDIS_URL_PREFIXES):
        found.append(("runner", "redis_url",
                      f"{runner.redis_url!r} is not a redis://, rediss:// or unix:// URL"))
    if not runner.redis_prefix or any(c.isspace() for c in runner.redis_prefix):
        found.append(("runner", "redis_prefix", "must be a non-empty word without spaces"))
    return found


def _runner_problems(r: RunnerSection) -> list[tuple[str, str, str]]:
    problems = []
    if not is_time_zone(r.timezone):
        problems.append(("runner", "timezone",
                         f"{r.timezone!r} is not a known time zone (e.g. 'UTC', 'Europe/Paris')"))
    mode_ok = re.fullmatch(r"(0o|0)?[0-7]{3}", r.file_mode)
    if not mode_ok or int(r.file_mode[-3:], 8) & 0o600 != 0o600:
        problems.append(("runner", "file_mode",
                         f"{r.file_mode!r} must be octal permissions that let the owner read "
                         "and write, e.g. \"0600\" or \"0640\""))
    if r.node_name and not re.fullmatch(r"[\w.-]+", r.node_name):
        problems.append(("runner", "node_name",
                         f"{r.node_name!r} may hold only letters, digits, '.', '-' and '_'"))
    if r.serializer not in SERIALIZERS:
        problems.append(("runner", "serializer",
                         f"{r.serializer!r} is not one of {', '.join(SERIALIZERS)}"))
    return problems


def is_time_zone(name: str) -> bool:
    """True when ``name`` is an IANA time zone this system knows."""
    if not name or name != name.strip() or name.startswith(("/", ".")):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def check_settings(s: Settings, where: str) -> None:
    problems = settings_problems(s)
    if problems:
        section, key, why = problems[0]
        raise ConfigError(f"{where}: [{section}] {key} {why}")


def settings_problems(s: Settings) -> list[tuple[str, str, str]]:
    """What is wrong across sections, as (section, key, why), first found first."""
    w, d = s.worker, s.database
    problems = []
    if w.max_concurrent_tasks < 1:
        problems.append(("worker", "max_concurrent_tasks", "must be at least 1"))
    for key in ("prefetch", "retry_limit", "queue_size", "crash_limit", "max_memory_mb",
                "min_free_disk_mb"):
        if getattr(w, key) < 0:
            problems.append(("worker", key, "must not be negative"))
    for key in ("retry_delay", "max_retry_delay", "timeout", "shutdown_timeout", "jitter",
                "stuck_grace", "isolation_limit", "priority_aging", "max_clock_drift",
                "max_payload_mb"):
        if getattr(w, key) < 0:
            problems.append(("worker", key, "must not be negative"))
    for key in ("lease_seconds", "heartbeat_interval", "poll_interval"):
        if getattr(w, key) <= 0:
            problems.append(("worker", key, "must be greater than 0"))
    if w.backoff < 1:
        problems.append(("worker", "backoff", "must be at least 1"))
    if w.heartbeat_interval * 2 > w.lease_seconds:
        problems.append(("worker", "lease_seconds", "must be at least twice heartbeat_interval"))
    if w.queue_type not in QUEUE_TYPES:
        supported = ", ".join(QUEUE_TYPES)
        problems.append(("worker", "queue_type",
                         f"{w.queue_type!r} is not supported (use one of {supported})"))
    if w.queue_type == "redis":
        problems += _redis_problems(s)
    if w.log_level.upper() not in LOG_LEVELS:
        problems.append(("worker", "log_level", f"{w.log_level!r} is not one of {LOG_LEVELS}"))
    for queue in w.queues:
        if not QUEUE_NAME.match(queue):
            problems.append(("worker", "queues", f"{queue!r} is not a valid queue name"))
    # Again for [worker]: an environment override has not been through build_section.
    problems += [("worker", key, why) for key, why in too_large(w)]
    if d.synchronous.upper() not in SYNCHRONOUS:
        problems.append(("database", "synchronous",
                         f"{d.synchronous!r} is not one of {', '.join(SYNCHRONOUS)}"))
    for key in ("busy_timeout", "write_deadline", "max_page_count"):
        if getattr(d, key) < 0:
            problems.append(("database", key, "must not be negative"))
    if d.journal_size_limit < -1:
        problems.append(("database", "journal_size_limit", "must not be negative (-1: no limit)"))
    if not s.runner.database:
        problems.append(("runner", "database", "must not be empty"))
    elif w.queue_type == "postgres" and not s.runner.database.startswith(POSTGRES_URL_PREFIXES):
        problems.append(("runner", "database",
                         f"{s.runner.database!r} is not a PostgreSQL URL; queue_type "
                         "\"postgres\" needs one like \"postgresql://user@host:5432/dbname\""))
    elif w.queue_type != "postgres" and s.runner.database.startswith(POSTGRES_URL_PREFIXES):
        problems.append(("worker", "queue_type",
                         f"is \"{w.queue_type}\" but [runner] database is a PostgreSQL URL; "
                         "set queue_type = \"postgres\" (or WORKER_QUEUE_TYPE=postgres)"))
    elif w.queue_type == "sqlite" and s.runner.database.startswith(REDIS_URL_PREFIXES):
        problems.append(("worker", "queue_type",
                         "is \"sqlite\" but [runner] database is a Redis URL; set "
                         "queue_type = \"redis\" (or WORKER_QUEUE_TYPE=redis)"))
    problems += _runner_problems(s.runner)
    return problems
