"""What a Prometheus scrape reads: a snapshot whose cost does not grow with the jobs table.

Two scopes, never mixed:

* :class:`DatabaseSnapshot`: the whole database's figures (lifetime counters,
  backlog, workers alive, schedule lag), whoever reads them. Served by
  ``python -m runner metrics`` and by the one worker elected exporter.
* :class:`WorkerSnapshot`: one worker process (threads, running and prefetched
  jobs, its last heartbeat, CPU and memory), served by that worker only.

Every database read is bounded: the counters table has a row per task and
queue; backlog counts walk a partial index and stop at :data:`COUNT_LIMIT`;
the oldest waiting job is one index seek per queue.
"""

from __future__ import annotations

import functools
import socket
import sys
from dataclasses import dataclass

import psutil

from runner.store.backend import Store
from runner.store.views import COUNT_LIMIT, DatabaseSnapshot, QueueGauges  # noqa: F401 - re-exported


def read_database(store: Store, *, now: float | None = None,
                  heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
    """The database-wide snapshot (cost bounded by tasks x queues, not by jobs)."""
    return store.read_snapshot(now=now, heartbeat_limit=heartbeat_limit)


def waiting_queues(store: Store) -> list[str]:
    """Queues with waiting jobs."""
    return store.waiting_queues()


@dataclass(frozen=True)
class ProcessStats:
    """The standard ``process_*`` figures of this process."""

    cpu_seconds: float
    resident_bytes: int
    virtual_bytes: int
    start_time: float
    open_fds: int | None
    max_fds: int | None


def read_process(process: psutil.Process | None = None) -> ProcessStats:
    """CPU time, memory, start time and file descriptors of this process."""
    p = process or psutil.Process()
    with p.oneshot():
        cpu = p.cpu_times()
        memory = p.memory_info()
        started = p.create_time()
        fds = p.num_fds() if hasattr(p, "num_fds") else None
    try:
        import resource

        max_fds: int | None = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError, OSError):
        max_fds = None
    return ProcessStats(cpu.user + cpu.system, memory.rss, memory.vms, started, fds,
                        None if max_fds is None or max_fds < 0 else max_fds)


@dataclass(frozen=True)
class WorkerSnapshot:
    """One worker process at one moment."""

    host: str
    name: str
    threads: int
    running: int
    """Jobs this process is running now."""
    prefetched: int
    """Jobs claimed ahead and waiting in this process for a free thread."""
    last_heartbeat: float | None
    """Wall-clock time of the last heartbeat written (None before the first)."""
    cpu_ratio: float | None
    """CPU used over the last heartbeat interval, as a share of one core (0-1 per core)."""
    paused: bool
    exporter: bool
    """True while this worker serves the database-wide series."""
    process: ProcessStats


def host_name() -> str:
    """This machine's name, as the ``host`` label."""
    return socket.gethostname()


@dataclass(frozen=True)
class BuildInfo:
    """What ``jobrunner_build_info`` says."""

    version: str
    python: str


@functools.cache
def build_info() -> BuildInfo:
    """The installed version of this package and the Python running it.

    Read at the first scrape, not at start-up: looking the version up takes
    about 0.1 s.
    """
    from importlib import metadata

    try:
        version = metadata.version("jobrunner")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return BuildInfo(version, ".".join(map(str, sys.version_info[:3])))

