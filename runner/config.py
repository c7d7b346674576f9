"""settings.toml plus environment overrides, loaded once into a frozen ``Settings``.

Every section is typed and validated here, at load (the sections beyond
``[runner]``, ``[worker]`` and ``[database]`` are declared in
:mod:`runner.sections`): an unknown section or key, a wrong type or a bad
value raises ``ConfigError`` naming the file, the section and the key, which
``run.py``, ``python -m runner`` and ``python -m tui`` turn into exit code 78.

Who reads what, and when:

* ``run.py`` and ``python -m runner`` call :func:`load_settings` at start-up (and
  again on SIGHUP); a bad file stops them with exit code 78.
* Local scripts that enqueue get the same settings lazily, on first use.
* Nothing below this module reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from runner.errors import ConfigError
from runner.event_patterns import check_pattern
from runner.section_environment import assignments
from runner.sections import (
    LOG_LEVELS,
    QUEUE_NAME,
    EventSettings,
    HealthSection,
    LoggingSection,
    MetricsSection,
    Problem,
    QueueSection,
    RetentionSection,
    ScheduleOverride,
    TaskOverride,
    TaskSection,
    TuiSection,
)
from runner.setting_bounds import (
    COUNT,
    DAY,
    FACTOR,
    HALF_DAY,
    PAGES,
    PAYLOAD_MB,
    THREADS,
    WHOLE,
    YEAR,
    Maxima,
    Most,
    too_large,
)
from runner.text_files import read_utf8

T = TypeVar("T")

#: Environment variable naming the settings file (default ``./settings.toml``).
SETTINGS_ENV = "RUNNER_SETTINGS"

QUEUE_TYPES = ("sqlite", "postgres", "redis")
#: How a PostgreSQL database is named in ``[runner] database`` / ``RUNNER_DATABASE``.
POSTGRES_URL_PREFIXES = ("postgresql://", "postgres://")
REDIS_URL_PREFIXES = ("redis://", "rediss://", "unix://")
SERIALIZERS = ("pickle", "json")
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


@dataclass(frozen=True)
class RunnerSection:
    """``[runner]``: where the jobs live and which task modules a worker loads."""

    database: str = "jobs.db"
    """Path of the SQLite file, relative to the settings file's directory, or with
    ``queue_type = "postgres"`` a PostgreSQL URL (``postgresql://user@host:5432/dbname``)."""
    node_name: str = ""
    """This host's name in worker ids (empty: the machine's host name). Workers of one
    node name recognise each other's dead processes by pid; others wait out the lease."""
    imports: tuple[str, ...] = ()
    """Task modules the worker imports at start-up (dotted names)."""
    timezone: str = "UTC"
    """Default time zone of cron schedules."""
    file_mode: str = "0600"
    """Octal permissions of the files the runner creates (database, WAL, log file)."""
    serializer: str = "pickle"
    """How job payloads and results are stored: "pickle" (any Python value) or "json"
    (plain data only; a payload cannot run code when it is read)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """The Redis server of ``[worker] queue_type = "redis"`` (also ``REDIS_URL``)."""
    redis_prefix: str = "jobrunner"
    """Prefix of every Redis key the runner writes (several runners can share a server)."""

    @property
    def file_mode_bits(self) -> int:
        """``file_mode`` as a number (validated at load)."""
        return int(self.file_mode[-3:], 8)


@dataclass(frozen=True)
class WorkerSection:
    """``[worker]``: defaults for every task and the worker's own behaviour."""

    MAXIMA: ClassVar[Maxima] = {
        "max_concurrent_tasks": THREADS, "prefetch": Most(1024, "(jobs)"),
        "retry_limit": COUNT, "retry_delay": YEAR, "backoff": FACTOR, "max_retry_delay": YEAR,
        "jitter": FACTOR, "timeout": YEAR, "queue_size": COUNT, "shutdown_timeout": DAY,
        "lease_seconds": DAY, "heartbeat_interval": HALF_DAY, "max_clock_drift": DAY,
        "crash_limit": COUNT, "stuck_grace": DAY, "isolation_limit": DAY, "poll_interval": DAY,
        "priority_aging": YEAR, "max_memory_mb": WHOLE, "min_free_disk_mb": WHOLE,
        "max_payload_mb": PAYLOAD_MB}

    max_concurrent_tasks: int = 10
    """Worker threads per ``run.py`` process."""
    prefetch: int = 4
    """Jobs a worker process claims ahead of its idle threads, in the same transaction
    (fewer commits per job; they show as executing while they wait, under lease)."""
    retry_limit: int = 3
    """Retries after the first attempt before a job is dead."""
    retry_delay: float = 1.0
    """Seconds before the first retry; later ones grow by ``backoff``."""
    backoff: float = 2.0
    """Multiplier applied to the retry delay at each retry."""
    max_retry_delay: float = 3600.0
    """Cap on the retry delay, in seconds."""
    jitter: float = 0.1
    """Random spread added to each retry delay, as a fraction of it (0 disables)."""
    timeout: float = 300.0
    """Seconds an attempt may run before it is cancelled (0 disables)."""
    queue_size: int = 1000
    """Most jobs that may wait in one queue; enqueues beyond it fail (0 = unbounded)."""
    queue_type: str = "sqlite"
    """Storage backend."""
    queues: tuple[str, ...] = ()
    """Queues this worker takes jobs from; empty means all."""
    shutdown_timeout: float = 30.0
    """Seconds a SIGTERM waits for running jobs before handing them back."""
    lease_seconds: float = 60.0
    """How long a claim stays valid without a heartbeat extending it."""
    heartbeat_interval: float = 5.0
    """Seconds between heartbeats, lease extensions and reaper passes."""
    max_clock_drift: float = 0.0
    """Seconds this host's clock may differ from the PostgreSQL or Redis server's before
    the worker warns and health fails (0 = a quarter of ``lease_seconds``; see
    :mod:`runner.clock_drift`)."""
    crash_limit: int = 3
    """A job that was running when its worker died this many times goes to dead."""
    stuck_grace: float = 10.0
    """Seconds past its timeout after which a job still running (blocked in a C call
    the timeout cannot interrupt) is stuck: its thread is replaced, and the attempt
    fails by its timeout (retried per the task's policy, else dead)."""
    isolation_limit: float = 60.0
    """Longest a suspect job (running when a worker died) runs alone before the
    worker claims other jobs beside it."""
    poll_interval: float = 1.0
    """Longest idle wait between looks at the queue when no wake-up arrives."""
    priority_aging: float = 300.0
    """Seconds a due job waits to gain one level of priority, so low priorities are
    not starved (0 disables)."""
    log_level: str = "INFO"
    """Level of the worker's log output."""
    max_memory_mb: int = 0
    """RSS above which the worker stops claiming, drains and exits with code 86 (0 = off)."""
    min_free_disk_mb: int = 64
    """Free space under the database directory below which claiming pauses (0 = off)."""
    max_payload_mb: float = 16.0
    """Most MiB one job's serialized payload (its arguments and options) or one event's
    data may take: a call over it raises InvalidArgument and writes nothing (0 = no bound).
    Past a few MiB a job should carry a reference to its data (a path, a row id)."""


@dataclass(frozen=True)
class DatabaseSection:
    """``[database]``: SQLite pragmas."""

    MAXIMA: ClassVar[Maxima] = {"busy_timeout": DAY, "journal_size_limit": WHOLE,
                                "write_deadline": DAY, "max_page_count": PAGES}

    synchronous: str = "NORMAL"
    """SQLite ``synchronous``: FULL makes every commit survive power loss."""
    busy_timeout: float = 10.0
    """Seconds a connection waits for the write lock before giving up (on PostgreSQL: a
    CLI command's, health's or the dashboard's wait for a lock another session holds)."""
    journal_size_limit: int = 64 * 1024 * 1024
    """Bytes the WAL is truncated to after a checkpoint."""
    write_deadline: float = 15.0
    """Seconds an enqueue keeps retrying a locked database before it fails."""
    max_page_count: int = 0
    """Hard cap on the file's size in pages (SQLite ``max_page_count``); 0 = no cap."""


@dataclass(frozen=True)
class Settings:
    """Everything the runner is configured with; built by :func:`load_settings`."""

    runner: RunnerSection = field(default_factory=RunnerSection)
    worker: WorkerSection = field(default_factory=WorkerSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    tasks: Mapping[str, TaskSection] = field(default_factory=dict)
    """``[tasks.NAME]``, by task name."""
    logging: LoggingSection = field(default_factory=LoggingSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    health: HealthSection = field(default_factory=HealthSection)
    retention: RetentionSection = field(default_factory=RetentionSection)
    events: EventSettings = field(default_factory=EventSettings)
    schedules: Mapping[str, ScheduleOverride] = field(default_factory=dict)
    """``[schedules.NAME]``; a name no schedule in code has is refused by the scheduler."""
    tui: TuiSection = field(default_factory=TuiSection)
    queues: Mapping[str, QueueSection] = field(
        default_factory=lambda: {"default": QueueSection()})
    """``[queues.NAME]``; ``default`` is always present."""
    path: str | None = None
    """The settings file these came from, or None for built-in defaults."""
    variables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The ``WORKER_QUEUE_*`` / ``WORKER_TASK_*`` variables that made a named section the
    file does not have, by ``"queues.NAME"`` / ``"tasks.NAME"``."""

    def origin_of(self, section: str, name: str) -> str:
        """Where ``[section.NAME]`` came from, for a message about it: the variables that
        made it, else the settings file."""
        made = self.variables.get(f"{section}.{name}")
        return ", ".join(made) if made else (self.path or "settings")

    @property
    def database_url(self) -> str | None:
        """The PostgreSQL URL of the jobs database (``queue_type = "postgres"``), else None."""
        if self.worker.queue_type == "postgres":
            return self.runner.database
        return None

    @property
    def database_path(self) -> Path:
        """Absolute path of the jobs database."""
        path = Path(self.runner.database).expanduser()
        if not path.is_absolute() and self.path:
            path = Path(self.path).resolve().parent / path
        return path.absolute()

    def task_override(self, name: str) -> TaskSection:
        """The ``[tasks.NAME]`` override for a task, empty when there is none."""
        return self.tasks.get(name) or TaskSection()

    def queue_section(self, name: str) -> QueueSection:
        """The ``[queues.NAME]`` settings of a queue (defaults when it has none)."""
        return self.queues.get(name) or QueueSection()

    def paused_queues(self) -> list[str]:
        """The queues ``[queues.NAME] paused = true`` starts paused (see
        :meth:`runner.store.flow_control.FlowControlStore.seed_pauses`)."""
        return [name for name, section in self.queues.items() if section.paused]

    def with_database(self, database: str | os.PathLike[str]) -> Settings:
        """A copy pointing at another database file."""
        return replace(self, runner=replace(self.runner, database=str(database)))


_SECTIONS: dict[str, type] = {
    "runner": RunnerSection, "worker": WorkerSection, "database": DatabaseSection,
    "logging": LoggingSection, "metrics": MetricsSection, "health": HealthSection,
    "retention": RetentionSection, "tui": TuiSection}
#: Sections that are tables of named tables.
_NAMED = ("tasks", "events", "schedules", "queues")
_ALIASES = {"max_retries": "retry_limit", "retries": "retry_limit",
            "concurrency": "max_concurrent_tasks"}


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
            sections[key] = _build(_SECTIONS[key], value, f"{where}: [{key}]")
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
    _check(settings, where)
    return settings


def _named_tables(value: Any, where: str, section: str, cls: type[T]) -> dict[str, T]:
    """``[section.NAME]`` tables (``[tasks.NAME]``, ...): one ``cls`` per name."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{section}] must be a table of [{section}.NAME] tables")
    for name, table in value.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] {name} must be a [{section}.{name}] table")
    return {name: _build(cls, table, f"{where}: [{section}.{name}]")
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
    built: EventSettings = _build(EventSettings, scalars, f"{where}: [events]",
                                  skip=("patterns", "handlers"))
    return replace(built, patterns=patterns, handlers=handlers)


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
    problems = _problems(result)
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
        tables[a.section][a.name] = _build(_NAMED_CLASSES[a.section], values,
                                           f"{a.variable}: [{a.section}.{a.name}]")
        changed.add(a.section)
    named: dict[str, Any] = {section: tables[section] for section in changed}
    if made:
        named["variables"] = {**settings.variables, **made}
    return named


def _keys_of(cls: type) -> dict[str, str]:
    """A section's keys and the aliases of them, each with its type annotation."""
    keys = {f.name: str(f.type) for f in fields(cls)}
    keys.update({alias: keys[name] for alias, name in _ALIASES.items()
                 if name in keys and alias not in keys})
    return keys


def _redis_problems(s: Settings) -> list[tuple[str, str, str]]:
    """What is wrong with the Redis settings (checked when ``queue_type`` is redis)."""
    runner, found = s.runner, []
    if not runner.redis_url.startswith(REDIS_URL_PREFIXES):
        found.append(("runner", "redis_url",
                      f"{runner.redis_url!r} is not a redis://, rediss:// or unix:// URL"))
    if not runner.redis_prefix or any(c.isspace() for c in runner.redis_prefix):
        found.append(("runner", "redis_prefix", "must be a non-empty word without spaces"))
    return found


def _build(cls: type, table: Any, where: str, *, skip: tuple[str, ...] = ()) -> Any:
    """One section's table as ``cls``: unknown keys, wrong types and bad values refused."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {type(table).__name__}")
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = key if key in known else _ALIASES.get(key, key)
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
    return [alias for alias, name in _ALIASES.items() if name == key and alias not in known]


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


def _check(s: Settings, where: str) -> None:
    problems = _problems(s)
    if problems:
        section, key, why = problems[0]
        raise ConfigError(f"{where}: [{section}] {key} {why}")


def _problems(s: Settings) -> list[tuple[str, str, str]]:
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
    # Again for [worker]: an environment override has not been through _build.
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
