"""The typed settings tree: ``[runner]``, ``[worker]``, ``[database]`` and ``Settings``.

Every module that is configured reads a frozen ``Settings`` and never parses a
table or the environment again: :func:`runner.settings_loader.load_settings`
builds it from settings.toml and the environment, checked at load by
:mod:`runner.settings_validation`. The sections beyond these three are declared
in :mod:`runner.sections` and :mod:`runner.service_sections`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from runner.sections import EventSettings, QueueSection, ScheduleOverride, TaskSection
from runner.service_sections import (
    HealthSection,
    LoggingSection,
    MetricsSection,
    RetentionSection,
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
)

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
    """Everything the runner is configured with; built by
    :func:`runner.settings_loader.load_settings`."""

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

    @cached_property
    def bounded(self) -> bool:
        """Whether any queue has a bound on its waiting jobs (``[worker] queue_size`` or
        a ``max_size``). Kept once asked: every enqueue asks."""
        return bool(self.worker.queue_size) or any(s.max_size for s in self.queues.values())

    def paused_queues(self) -> list[str]:
        """The queues ``[queues.NAME] paused = true`` starts paused (see
        :meth:`runner.store.flow_control.FlowControlStore.seed_pauses`)."""
        return [name for name, section in self.queues.items() if section.paused]

    def with_database(self, database: str | os.PathLike[str]) -> Settings:
        """A copy pointing at another database file."""
        return replace(self, runner=replace(self.runner, database=str(database)))

