"""The typed sections of settings.toml that tune the runner's own services, not its jobs.

``[logging]``, ``[metrics]``, ``[health]``, ``[retention]`` and ``[tui]``: where
log records go, the metrics listener, the health check's thresholds, how long
rows are kept and the dashboard. They are built and checked at load like the
sections of :mod:`runner.sections`, whose ``LOG_LEVELS`` and ``Problem`` they share.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from typing import ClassVar

from runner.sections import LOG_LEVELS, Problem
from runner.setting_bounds import CENTURY, COUNT, DAY, LOG_FILES, WHOLE, YEAR, Maxima

# -- [logging] -------------------------------------------------------------------------

DEFAULT_LOG_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s%(job)s: %(message)s"
ROTATIONS = ("size", "watched", "none")


@dataclass(frozen=True)
class LoggingSection:
    """``[logging]``: where log records go, and what is kept in the database."""

    MAXIMA: ClassVar[Maxima] = {
        "max_bytes": WHOLE, "backup_count": LOG_FILES, "job_max_bytes": WHOLE,
        "max_rows": COUNT, "message_max_bytes": WHOLE, "flush_interval": DAY}

    file: str = "worker.log"
    """Log file, relative to the settings file's directory; "" for console only."""
    rotation: str = "size"
    """"size" (rotate at ``max_bytes``), "watched" (reopen after logrotate) or "none"."""
    max_bytes: int = 10 * 1024 * 1024
    """Size at which ``worker.log`` is rotated (rotation = "size")."""
    backup_count: int = 5
    """Rotated files kept (rotation = "size")."""
    console: bool = True
    """Also log to standard error (journald picks it up under systemd)."""
    format: str = DEFAULT_LOG_FORMAT
    """``logging.Formatter`` format; ``%(job)s`` is " [task job=ID]" inside a job."""
    store: bool = True
    """Keep records in the ``runner_log`` table (``python -m runner logs``)."""
    store_level: str = "INFO"
    """Lowest level kept in the database."""
    store_worker_records: bool = True
    """Also keep the worker's own records (outside any job), with no job id."""
    capture_output: bool = True
    """Turn ``print()`` output of a job into records of that job."""
    job_max_bytes: int = 256 * 1024
    """Most message bytes kept per job (per worker process); later lines are dropped."""
    max_rows: int = 200_000
    """Most rows ``runner_log`` keeps; the oldest go first."""
    message_max_bytes: int = 8192
    """Longer messages (tracebacks included) are cut to this length."""
    flush_interval: float = 0.25
    """Seconds between batched writes of stored records."""

    def problems(self) -> list[Problem]:
        found = []
        if self.rotation not in ROTATIONS:
            found.append(("rotation", f"must be one of {', '.join(ROTATIONS)}, "
                                      f"got {self.rotation!r}"))
        if self.store_level.upper() not in LOG_LEVELS:
            found.append(("store_level", f"{self.store_level!r} is not one of "
                                         f"{', '.join(LOG_LEVELS)}"))
        for key in ("max_bytes", "backup_count", "job_max_bytes", "max_rows",
                    "message_max_bytes"):
            if getattr(self, key) < 0:
                found.append((key, "must not be negative"))
        if self.flush_interval <= 0:
            found.append(("flush_interval", "must be greater than 0"))
        try:
            logging.Formatter(self.format).format(_probe_record())
        except (ValueError, KeyError, TypeError) as exc:
            found.append(("format", f"is not a usable log format: {exc}"))
        return found


def _probe_record() -> logging.LogRecord:
    record = logging.LogRecord("probe", logging.INFO, __file__, 0, "probe", None, None)
    record.job = ""
    record.job_id = None
    record.task_name = None
    return record


# -- [metrics] -------------------------------------------------------------------------

#: Where a worker's ``/metrics`` gets the database-wide series from (``[metrics] database``).
METRICS_DATABASE_MODES = ("elected", "always", "never")


@dataclass(frozen=True)
class MetricsSection:
    """``[metrics]``: the worker's HTTP listener (needs a restart to change)."""

    listen: str = ""
    """``host:port`` to serve ``/metrics`` and ``/healthz`` on; "" = off."""
    allow_remote: bool = False
    """Allow a non-loopback ``listen`` address."""
    name: str = "worker"
    """This worker's ``worker`` label (with ``host``); give each worker of a host its own."""
    database: str = "elected"
    """Database-wide series in this worker's ``/metrics``: "elected" (one worker at a
    time serves them), "always", or "never" (scrape ``python -m runner metrics``)."""

    def problems(self) -> list[Problem]:
        if self.database not in METRICS_DATABASE_MODES:
            return [("database", f"must be one of {', '.join(METRICS_DATABASE_MODES)}, "
                                 f"got {self.database!r}")]
        if not self.name.strip():
            return [("name", "must not be empty")]
        if not self.listen:
            return []
        try:
            host, _ = split_listen(self.listen)
        except ValueError as exc:
            return [("listen", str(exc))]
        if not self.allow_remote and not is_loopback(host):
            return [("listen", f"{host!r} is not a loopback address; set allow_remote = true "
                               "to serve it")]
        return []


def split_listen(text: str) -> tuple[str, int]:
    """``"host:port"`` (``[::1]:9464`` for IPv6) as (host, port).

    Raises:
        ValueError: not ``host:port``, or an IPv6 address without brackets.
    """
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"must be 'host:port', got {text!r}")
    if ":" in host and not bracketed:
        raise ValueError(f"{text!r}: an IPv6 address goes in brackets, e.g. '[{host}]:{port}'")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- [health] and [retention] ----------------------------------------------------------


@dataclass(frozen=True)
class HealthSection:
    """``[health]``: thresholds of the health check."""

    MAXIMA: ClassVar[Maxima] = {"heartbeat_max_age": YEAR, "max_waiting_age": YEAR,
                                "max_schedule_lag": YEAR}

    heartbeat_max_age: float = 0.0
    """A worker heartbeat older than this is stale (0 = 3 x heartbeat_interval, >= 10 s)."""
    max_waiting_age: float = 600.0
    """A due job waiting longer than this means a stuck queue (0 disables)."""
    max_schedule_lag: float = 300.0
    """A schedule this late means a lagging scheduler (0 disables)."""
    quick_check: bool = True
    """Run ``PRAGMA quick_check`` on databases up to 64 MiB."""

    def problems(self) -> list[Problem]:
        return [(key, "must not be negative")
                for key in ("heartbeat_max_age", "max_waiting_age", "max_schedule_lag")
                if getattr(self, key) < 0]


@dataclass(frozen=True)
class RetentionSection:
    """``[retention]``: how long rows are kept, and the upkeep pass."""

    MAXIMA: ClassVar[Maxima] = {
        "interval": DAY, "completed_days": CENTURY, "dead_days": CENTURY,
        "logs_days": CENTURY, "events_days": CENTURY, "workers_days": CENTURY,
        "batch_size": COUNT, "wal_truncate_mb": None}  # only compared with the WAL's size

    enabled: bool = True
    """Run the pass in every worker."""
    interval: float = 600.0
    """Seconds between passes."""
    completed_days: float = 7.0
    """Keep completed and cancelled jobs this long after they finished."""
    dead_days: float = 30.0
    """Keep dead jobs this long."""
    logs_days: float = 7.0
    """Keep log records this long (a pruned job's records go with it)."""
    events_days: float = 30.0
    """Keep events this long (when the events table exists)."""
    workers_days: float = 7.0
    """Forget worker rows silent for this long."""
    batch_size: int = 1000
    """Rows deleted per transaction."""
    vacuum: bool = True
    """Give freed pages back with ``PRAGMA incremental_vacuum``."""
    wal_truncate_mb: float = 16.0
    """Checkpoint with TRUNCATE once the WAL is larger than this (0 = every pass)."""

    def problems(self) -> list[Problem]:
        found = [(key, "must not be negative")
                 for key in ("completed_days", "dead_days", "logs_days", "events_days",
                             "workers_days", "wal_truncate_mb") if getattr(self, key) < 0]
        if self.interval <= 0:
            found.append(("interval", "must be greater than 0"))
        if self.batch_size < 1:
            found.append(("batch_size", "must be at least 1"))
        return found


# -- [tui] -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TuiSection:
    """``[tui]``: the dashboard (``python -m tui``)."""

    MAXIMA: ClassVar[Maxima] = {"refresh": DAY}

    refresh: float = 1.0
    """Seconds between refreshes (``--refresh`` wins)."""
    actions: bool = True
    """False turns every action of the dashboard off, as ``--read-only`` does."""

    def problems(self) -> list[Problem]:
        if not self.refresh > 0 or not math.isfinite(self.refresh):
            return [("refresh", f"must be a number of seconds greater than 0, "
                                f"got {self.refresh!r}")]
        return []
