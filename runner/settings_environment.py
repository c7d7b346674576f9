"""The ``WORKER_*``, ``RUNNER_*`` and ``REDIS_URL`` overrides of a loaded ``Settings``.

A service's environment file changes a few keys without editing settings.toml;
each override is checked as the file's value would be, and a problem names the
variable rather than the file. The variable forms of ``[queues.NAME]`` and
``[tasks.NAME]`` are read by :mod:`runner.section_environment`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from runner.config import Settings, WorkerSection
from runner.errors import ConfigError
from runner.section_environment import assignments
from runner.sections import QUEUE_NAME, QueueSection, TaskSection
from runner.settings_validation import ALIASES, build_section, settings_problems

#: The environment variables that override one key each, and the key.
OVERRIDES = {
    "WORKER_CONCURRENCY": ("worker", "max_concurrent_tasks"),
    "WORKER_LOG_LEVEL": ("worker", "log_level"),
    "WORKER_QUEUE_TYPE": ("worker", "queue_type"),
    "RUNNER_DATABASE": ("runner", "database"),
    "RUNNER_NODE_NAME": ("runner", "node_name"),
    "REDIS_URL": ("runner", "redis_url"),
}


def apply_environment(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """Apply ``WORKER_*`` (``WORKER_QUEUE_<KEY>`` and ``WORKER_TASK_<KEY>`` included),
    ``RUNNER_DATABASE``, ``RUNNER_NODE_NAME`` and ``REDIS_URL`` overrides, checked as the file."""
    _refuse_unknown_worker_variables(environ)
    worker: dict[str, Any] = {}
    # An empty variable is unset, as systemd's environment files are often written.
    if queue_type := environ.get("WORKER_QUEUE_TYPE", "").strip():
        worker["queue_type"] = queue_type.lower()
    if text := environ.get("WORKER_CONCURRENCY", "").strip():
        try:
            worker["max_concurrent_tasks"] = int(text)
        except ValueError:
            raise ConfigError(
                f"WORKER_CONCURRENCY: expected a whole number, got {text!r}") from None
    if level := environ.get("WORKER_LOG_LEVEL", "").strip():
        worker["log_level"] = level.upper()
    runner = settings.runner
    if environ.get("RUNNER_DATABASE"):
        runner = replace(runner, database=environ["RUNNER_DATABASE"])
    if environ.get("RUNNER_NODE_NAME"):
        runner = replace(runner, node_name=environ["RUNNER_NODE_NAME"].strip())
    if environ.get("REDIS_URL"):
        runner = replace(runner, redis_url=environ["REDIS_URL"].strip())
    result = replace(settings, runner=runner, worker=replace(settings.worker, **worker),
                     **_named_from_environment(settings, environ))
    problems = settings_problems(result)
    if problems:
        section, key, why = problems[0]
        # The file was checked on its own, so the problem is an override's: name it.
        variable = next((name for name, target in OVERRIDES.items()
                         if target == (section, key) and environ.get(name, "").strip()),
                        "environment")
        raise ConfigError(f"{variable}: [{section}] {key} {why}")
    return result


def _refuse_unknown_worker_variables(environ: Mapping[str, str]) -> None:
    # A misspelt variable (WORKER_CONCURENCY) would otherwise change nothing, silently,
    # as an unknown key of the file would; WORKER_QUEUE_* and WORKER_TASK_* are checked
    # key by key in runner.section_environment.
    for variable in sorted(environ):
        if (not variable.startswith("WORKER_") or variable in OVERRIDES
                or variable.startswith(("WORKER_QUEUE_", "WORKER_TASK_"))
                or not environ[variable].strip()):
            continue
        known = sorted(name for name in OVERRIDES if name.startswith("WORKER_"))
        message = (f"{variable}: unknown variable (known: {', '.join(known)}, "
                   "WORKER_QUEUE_<KEY>, WORKER_TASK_<KEY>)")
        key = variable[len("WORKER_"):].lower()
        if key in {f.name for f in fields(WorkerSection)}:
            message += f"; [worker] {key} is set in the settings file"
        raise ConfigError(message)


_NAMED_CLASSES: dict[str, type] = {"queues": QueueSection, "tasks": TaskSection}


def _named_from_environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, Any]:
    """``[queues.NAME]`` and ``[tasks.NAME]`` with ``WORKER_QUEUE_*`` and ``WORKER_TASK_*``
    over them (see :mod:`runner.section_environment`), each checked as the file's."""
    keys = {section: _keys_of(cls) for section, cls in _NAMED_CLASSES.items()}
    tables: dict[str, dict[str, Any]] = {"queues": dict(settings.queues),
                                         "tasks": dict(settings.tasks)}
    changed: set[str] = set()
    made: dict[str, tuple[str, ...]] = {}
    for a in assignments(environ, keys):
        if a.name not in {"queues": settings.queues, "tasks": settings.tasks}[a.section]:
            where = f"{a.section}.{a.name}"
            made[where] = (*made.get(where, ()), a.variable)
        if a.section == "queues" and not QUEUE_NAME.match(a.name):
            raise ConfigError(f"{a.variable}: {a.name!r} is not a valid queue name")
        current = tables[a.section].get(a.name)
        values = {f.name: getattr(current, f.name) for f in fields(current)
                  if getattr(current, f.name) is not None} if current is not None else {}
        values[a.key] = a.value
        tables[a.section][a.name] = build_section(_NAMED_CLASSES[a.section], values,
                                           f"{a.variable}: [{a.section}.{a.name}]")
        changed.add(a.section)
    named: dict[str, Any] = {section: tables[section] for section in changed}
    if made:
        named["variables"] = {**settings.variables, **made}
    return named


def _keys_of(cls: type) -> dict[str, str]:
    """A section's keys and the aliases of them, each with its type annotation."""
    keys = {f.name: str(f.type) for f in fields(cls)}
    keys.update({alias: keys[name] for alias, name in ALIASES.items()
                 if name in keys and alias not in keys})
    return keys


