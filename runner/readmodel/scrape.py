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
import time
from dataclasses import dataclass, field

import psutil

from runner.store.counters import TaskTotals, read_totals
from runner.store.db import Database
from runner.store.models import SCHEDULE_ACTIVE, WAITING_SQL

#: Backlog counts stop here, so a scrape costs the same with a million waiting jobs.
COUNT_LIMIT = 100_000


@dataclass(frozen=True)
class QueueGauges:
    """One queue right now."""

    queue: str
    due: int
    """Waiting jobs whose time has come (the backlog), up to :data:`COUNT_LIMIT`."""
    scheduled: int
    """Waiting jobs due later (delayed, or retrying after a backoff), up to the limit."""
    running: int
    """Jobs claimed by a worker (running or prefetched)."""
    oldest_waiting_seconds: float
    """How long the oldest due job has waited; 0 when none waits."""


@dataclass(frozen=True)
class DatabaseSnapshot:
    """The database-wide figures at one moment."""

    at: float
    totals: list[TaskTotals]
    queues: list[QueueGauges]
    dead: int
    """Jobs in ``dead`` now, up to :data:`COUNT_LIMIT`."""
    workers: int
    """Worker processes with a fresh heartbeat."""
    schedule_lags: dict[str, float] = field(default_factory=dict)


def _capped_count(db: Database, sql: str, params: tuple) -> int:
    return int(db.query(f"SELECT count(*) FROM ({sql} LIMIT {COUNT_LIMIT})", params)[0][0])


def read_database(db: Database, *, now: float | None = None,
                  heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
    """Read the database-wide snapshot (cost bounded by tasks x queues, not by jobs)."""
    at = time.time() if now is None else now
    totals = read_totals(db)
    running = dict(db.query(
        "SELECT queue, count(*) FROM (SELECT queue FROM runner_job INDEXED BY runner_job_lease "
        f"WHERE state = 'executing' LIMIT {COUNT_LIMIT}) GROUP BY queue"))
    waiting = (f"FROM runner_job INDEXED BY runner_job_queue_waiting WHERE queue = ? "
               f"AND state IN {WAITING_SQL}")
    names = sorted({t.queue for t in totals} | set(running) | set(waiting_queues(db)))
    queues = []
    for queue in names:
        due = _capped_count(db, f"SELECT 1 {waiting} AND run_at <= ?", (queue, at))
        later = _capped_count(db, f"SELECT 1 {waiting} AND run_at > ?", (queue, at))
        (oldest,) = db.query(f"SELECT min(run_at) {waiting}", (queue,))[0]
        age = max(0.0, at - oldest) if oldest is not None and oldest <= at else 0.0
        queues.append(QueueGauges(queue, due, later, int(running.get(queue, 0)), age))
    dead = _capped_count(db, "SELECT 1 FROM runner_job INDEXED BY runner_job_state_created "
                             "WHERE state = 'dead'", ())
    (workers,) = db.query("SELECT count(*) FROM runner_worker WHERE state = 'running' "
                          "AND heartbeat_at >= ?", (at - heartbeat_limit,))[0]
    lags = {str(n): max(0.0, at - float(t)) if t is not None else 0.0 for n, t in db.query(
        f"SELECT name, next_fire_at FROM runner_schedule WHERE {SCHEDULE_ACTIVE}")}
    return DatabaseSnapshot(at, totals, queues, int(dead), int(workers), lags)


def waiting_queues(db: Database) -> list[str]:
    """Queues with waiting jobs: one index seek per queue, however many jobs wait."""
    index = f"runner_job INDEXED BY runner_job_queue_waiting WHERE state IN {WAITING_SQL}"
    return [q for (q,) in db.query(
        f"WITH RECURSIVE q(name) AS (SELECT min(queue) FROM {index} UNION ALL "
        f"SELECT (SELECT min(queue) FROM {index} AND queue > q.name) FROM q "
        f"WHERE q.name IS NOT NULL) SELECT name FROM q WHERE name IS NOT NULL")]


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

