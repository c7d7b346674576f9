"""Health: is a worker alive, is work flowing, is the database sound?

Used by ``python -m runner health`` (exit 0, or 1 with the reason on one line)
and by ``/healthz`` of the worker's metrics listener. The decision is a pure
function of :class:`HealthFacts` (:func:`evaluate`); :func:`gather` reads the
facts from the database.

``[health]`` keys: ``heartbeat_max_age`` (0 = three heartbeat intervals, at
least 10 s), ``max_waiting_age`` (600 s; 0 disables), ``max_schedule_lag``
(300 s; 0 disables), ``quick_check`` (true). A worker whose clock is further
from the server's than ``[worker] max_clock_drift`` (:mod:`runner.clock_drift`)
fails it too; heartbeats are aged by the server's clock, so such a worker
does not also look silent.

A full disk stops heartbeats too, so when they are stale the check looks at
the disk and says "disk full" rather than "heartbeat is stale".
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from runner.clock_drift import describe, drift_limit, over_limit, server_age
from runner.config import Settings
from runner.durations import age
from runner.errors import DiskFull
from runner.readmodel.metrics import schedule_lags
from runner.service_sections import HealthSection
from runner.store.backend import Store
from runner.store.owners import worker_gone
from runner.store.rows import WorkerRow
from runner.store.server_clock import ServerClock

#: Worker status prefix that the resource guard writes while claims are held.
PAUSED_PREFIX = "paused:"
#: Worker status prefix while a job overruns its timeout or a thread is written off.
STALLED_PREFIX = "stalled:"
#: How long a job of a stalled worker's status has run past its timeout, as of the beat.
_PAST_TIMEOUT = re.compile(r"\) (\d+)s past its (\S+s) timeout")
_QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024


def overrun_text(job_id: str, task: str, over: float, timeout: float) -> str:
    """A job past its timeout, as a worker's status says it (:func:`aged_status` reads it)."""
    return f"job {job_id} ({task}) {over:.0f}s past its {timeout:g}s timeout"


def aged_status(status: str, seconds: float) -> str:
    """A stalled worker's status as it stands ``seconds`` after the heartbeat that wrote
    it: each job has run that much further past its timeout since."""
    return _PAST_TIMEOUT.sub(
        lambda m: f") {int(m.group(1)) + seconds:.0f}s past its {m.group(2)} timeout", status)


def health_settings(settings: Settings) -> HealthSection:
    """The ``[health]`` section (typed and validated when the settings were loaded)."""
    return settings.health


def heartbeat_limit(settings: Settings, section: HealthSection) -> float:
    """Seconds after which a heartbeat is stale."""
    return section.heartbeat_max_age or max(10.0, 3 * settings.worker.heartbeat_interval)


@dataclass(frozen=True)
class HealthFacts:
    """What the decision needs, read at one moment."""

    newest_heartbeat_age: float | None
    """Age of the freshest running worker's heartbeat; None without workers."""
    oldest_waiting: dict[str, float]
    """Per queue, the age of the oldest due waiting job."""
    schedule_lags: Mapping[str, float] | None
    database_problem: str | None = None
    paused: str | None = None
    """Why a worker holds its claims (disk full, memory), from its status."""
    stalled: str | None = None
    """A job past its timeout, or a thread written off, from a worker's status."""
    disk_problem: str | None = None
    """Why the database cannot be written (no room), looked at when heartbeats are stale."""
    clock_offsets: Mapping[str, float] = field(default_factory=dict)
    """Per host, how far its workers' clock is ahead of the server's (negative: behind),
    of workers with a fresh heartbeat that measured it."""
    gone: tuple[str, ...] = ()
    """Workers of this host still registered as running whose process is gone (killed,
    crashed): their heartbeat is not counted, as ``workers`` says they are dead."""


@dataclass(frozen=True)
class HealthReport:
    """The verdict: ``ok``, else the first reason."""

    ok: bool
    reason: str


def schedule_lag_problem(lags: Mapping[str, float] | None, limit: float) -> str | None:
    """The worst schedule later than ``limit`` seconds, described; None when all are on time."""
    if not lags or not limit:
        return None
    name, lag = max(lags.items(), key=lambda item: item[1])
    if lag <= limit:
        return None
    return f"scheduler lagging: schedule '{name}' is {age(lag)} late (limit {age(limit)})"


def clock_problem(offsets: Mapping[str, float], limit: float) -> str | None:
    """The host whose clock is furthest from the server's, past ``limit``, described; None
    when every clock is within it."""
    if not offsets or not limit:
        return None
    host, offset = max(offsets.items(), key=lambda item: abs(item[1]))
    if not over_limit(offset, limit):
        return None
    problem = f"clock drift: {describe(host, offset)} (limit {age(limit)})"
    if len(offsets) > 1 and all(over_limit(o, limit) and abs(o - offset) <= limit
                                for o in offsets.values()):
        # Every host off by about as much, the same way: the odd one out is the server.
        problem += "; every worker's clock is about as far off, so the server's may be wrong"
    return problem


def clock_offsets(workers: Iterable[WorkerRow], now: float,
                  heartbeat_max_age: float | None) -> dict[str, float]:
    """Per host, the measured clock offset furthest from zero among its workers whose
    heartbeat is fresh (a dead worker's last measure is no longer anyone's problem)."""
    found: dict[str, float] = {}
    for w in workers:
        if w.clock_offset is None or (heartbeat_max_age is not None and server_age(
                w.heartbeat_at, w.clock_offset, now) > heartbeat_max_age):
            continue
        if abs(w.clock_offset) >= abs(found.get(w.host, 0.0)):
            found[w.host] = w.clock_offset
    return found


def evaluate(facts: HealthFacts, *, heartbeat_max_age: float, max_waiting_age: float,
             max_schedule_lag: float, max_clock_drift: float = 0.0) -> HealthReport:
    """Decide health from the facts (pure); a limit of 0 is not checked."""
    if facts.database_problem:
        return HealthReport(False, f"database: {facts.database_problem}")
    if facts.disk_problem:
        # A full disk also stops heartbeats: name the cause, not the symptom.
        return HealthReport(False, facts.disk_problem)
    if facts.newest_heartbeat_age is None and facts.gone:
        return HealthReport(False, f"no live worker: the process of worker "
                                   f"{', '.join(facts.gone)} on this host is gone")
    if facts.newest_heartbeat_age is None:
        return HealthReport(False, "no running worker has registered a heartbeat")
    if facts.newest_heartbeat_age > heartbeat_max_age:
        return HealthReport(False, f"worker heartbeat is stale: last one "
                                   f"{age(facts.newest_heartbeat_age)} ago "
                                   f"(limit {age(heartbeat_max_age)})")
    if facts.paused:
        return HealthReport(False, f"worker not claiming: {facts.paused}")
    if facts.stalled:
        return HealthReport(False, f"worker stalled: {facts.stalled}")
    # Before the queues: a host whose clock is behind leaves due jobs waiting.
    drift = clock_problem(facts.clock_offsets, max_clock_drift)
    if drift:
        return HealthReport(False, drift)
    if max_waiting_age:
        for queue, waited in sorted(facts.oldest_waiting.items(), key=lambda i: -i[1]):
            if waited > max_waiting_age:
                return HealthReport(False, f"queue '{queue}' stuck: oldest waiting job is "
                                           f"{age(waited)} old (limit {age(max_waiting_age)})")
    lag = schedule_lag_problem(facts.schedule_lags, max_schedule_lag)
    if lag:
        return HealthReport(False, lag)
    return HealthReport(True, "ok")


def paused_queues(store: Store) -> set[str]:
    """Queues paused on purpose: their waiting jobs do not make a queue stuck."""
    return {p.name for p in store.list_pauses() if p.kind == "queue" and p.paused}


def live_workers(workers: Iterable[WorkerRow], node: str | None = None
                 ) -> tuple[list[WorkerRow], tuple[str, ...]]:
    """The workers whose heartbeats count, and the ids of those of this host (named by
    ``node``, else the host name) whose process is gone: known dead, however fresh their
    last beat (``workers`` says ``dead (process gone)``)."""
    live, gone = [], []
    for w in workers:
        (gone if worker_gone(w.id, node) else live).append(w)
    return live, tuple(w.id for w in gone)


def gather(store: Store, *, quick_check: bool = True, now: float | None = None,
           heartbeat_max_age: float | None = None, min_free_disk_mb: int = 0,
           node: str | None = None) -> HealthFacts:
    """Read the facts from the database.

    With ``heartbeat_max_age``, a missing or stale heartbeat leads to a look at
    the disk (free space, then a rolled-back write), which tells a full disk
    from a dead worker. A worker of this host (named by ``node``, else the host
    name) whose process is gone does not count as alive, however fresh its last beat.
    """
    # Heartbeats are aged, and waiting jobs and schedule slots timed, by the server's
    # clock: the host asking may be off it.
    at = ServerClock(store).now() if now is None else now
    try:
        problem = check_database(store) if quick_check else None
        workers = store.list_workers()
        depths = store.queue_depths(at)
        lags = schedule_lags(store, at)
    except Exception as exc:
        return HealthFacts(None, {}, None, database_problem=str(exc))
    facts = facts_from(workers, {d.queue: d.oldest_waiting_age for d in depths}, lags, at,
                       held=paused_queues(store), heartbeat_max_age=heartbeat_max_age, node=node)
    fresh = facts.newest_heartbeat_age
    if heartbeat_max_age is not None and (fresh is None or fresh > heartbeat_max_age):
        facts = replace(facts, disk_problem=disk_problem(store, min_free_disk_mb))
    return replace(facts, database_problem=problem)


def facts_from(workers: Iterable[WorkerRow], waiting: Mapping[str, float | None],
               lags: Mapping[str, float] | None, now: float, *, held: Iterable[str] = (),
               heartbeat_max_age: float | None = None, node: str | None = None) -> HealthFacts:
    """The facts of these workers, per-queue oldest waiting ages and schedule lags, as of
    ``now``: the one place they are derived, so ``health`` and the dashboard's banner,
    which read them differently, decide on the same facts. Queues in ``held`` are
    paused on purpose and never stuck."""
    live, gone = live_workers(workers, node)
    fresh = min((server_age(w.heartbeat_at, w.clock_offset, now) for w in live), default=None)
    paused = next((w.status[len(PAUSED_PREFIX):].strip() for w in live
                   if w.status and w.status.startswith(PAUSED_PREFIX)), None)
    skipped = set(held)
    return HealthFacts(
        None if fresh is None else max(0.0, fresh),
        {queue: max(0.0, waited) for queue, waited in waiting.items()
         if waited is not None and queue not in skipped},
        lags, paused=paused, stalled=_stalled(live, now),
        clock_offsets=clock_offsets(live, now, heartbeat_max_age), gone=gone)


def _stalled(workers: Iterable[WorkerRow], now: float) -> str | None:
    """The first stalled worker's status, as of ``now``: it was written at its heartbeat,
    and a job overrunning its timeout then has run on since."""
    for w in workers:
        if w.status and w.status.startswith(STALLED_PREFIX):
            since = max(0.0, server_age(w.heartbeat_at, w.clock_offset, now))
            return f"{aged_status(w.status[len(STALLED_PREFIX):].strip(), since)} (worker {w.id})"
    return None


def disk_problem(store: Store, min_free_disk_mb: int = 0) -> str | None:
    """"disk full: ..." when free space is under the minimum or a small write does not fit."""
    directory = store.data_dir()
    free = None
    if directory is not None:
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            free = None
    if free is not None and min_free_disk_mb and free < min_free_disk_mb * 2**20:
        return (f"disk full: only {free / 2**20:.0f} MiB free under {directory} "
                f"(min_free_disk_mb {min_free_disk_mb})")
    if store.readonly:
        return None
    try:
        store.probe_write(12288, deadline=1.0)
    except DiskFull as exc:
        return f"disk full: {exc}"
    except Exception:  # locked or busy: says nothing about the disk
        return None
    return None


def check_database(store: Store) -> str | None:
    """A full check of small databases, a schema read of big ones; the problem or None."""
    return store.integrity_problem(full_check_below=_QUICK_CHECK_MAX_BYTES)


def check(store: Store, settings: Settings, *, paused: str | None = None,
          now: float | None = None) -> HealthReport:
    """Gather and evaluate in one call; ``paused`` is the caller's own hold reason, if any."""
    section = health_settings(settings)
    limit = heartbeat_limit(settings, section)
    facts = gather(store, quick_check=section.quick_check, now=now, heartbeat_max_age=limit,
                   min_free_disk_mb=settings.worker.min_free_disk_mb,
                   node=settings.runner.node_name or None)
    if paused and not facts.paused:
        facts = replace(facts, paused=paused)
    return evaluate(facts, heartbeat_max_age=limit,
                    max_waiting_age=section.max_waiting_age,
                    max_schedule_lag=section.max_schedule_lag,
                    max_clock_drift=drift_limit(settings.worker))
