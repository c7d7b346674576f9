"""Window figures read from the jobs database, for ``python -m runner stats`` and the dashboard.

Prometheus reads lifetime counters instead (:mod:`runner.scrape`): these
figures fall as jobs leave the window, and their cost grows with its jobs.

Per task and per queue over the last ``window`` seconds (default one hour):
completions and failed attempts per minute, processing time p50/p95/p99, error
rate, retries and deaths; per queue: jobs by state and the age of the oldest
due waiting job; per schedule: how late its next fire is; per worker: heartbeat
age, RSS, CPU.

Each query fetches all its rows at once (see :mod:`runner.store.sqlite.queries`).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from runner.store.backend import Store
from runner.store.states import ALL

logger = logging.getLogger(__name__)

WINDOW = 3600.0
STATES = tuple(s.value for s in ALL)


@dataclass(frozen=True)
class Throughput:
    """What happened to one task, or one queue, during the window."""

    completed_per_minute: tuple[int, ...]
    """Completions per minute, oldest first; the last bucket is the last 60 seconds."""
    failed_per_minute: tuple[int, ...]
    """Failed attempts per minute, same buckets."""
    completed: int
    failed: int
    """Failed attempts (each retry that failed counts)."""
    retries: int
    """Failed attempts that were followed by another attempt."""
    died: int
    """Jobs that went to ``dead`` during the window."""
    durations: tuple[float, float, float] | None
    """Processing time p50, p95, p99 of completed jobs, in seconds."""
    duration_sum: float
    duration_count: int

    @property
    def error_rate(self) -> float | None:
        """Failed attempts / (completions + failed attempts); None when nothing ran."""
        total = self.completed + self.failed
        return self.failed / total if total else None


@dataclass(frozen=True)
class TaskMetrics:
    """One (task, queue) pair."""

    task: str
    queue: str
    stats: Throughput
    dead: int
    """Jobs of this task in ``dead`` now."""


@dataclass(frozen=True)
class QueueMetrics:
    """One queue."""

    queue: str
    states: dict[str, int]
    oldest_waiting_age: float | None
    stats: Throughput


@dataclass(frozen=True)
class WorkerMetrics:
    """A running worker process as its last heartbeat recorded it."""

    id: str
    heartbeat_age: float
    rss_bytes: int | None
    cpu_percent: float | None
    running: int
    concurrency: int
    status: str | None


@dataclass(frozen=True)
class Snapshot:
    """Every metric at one moment."""

    at: float
    window: float
    states: dict[str, int]
    tasks: list[TaskMetrics]
    queues: list[QueueMetrics]
    workers: list[WorkerMetrics]
    schedule_lags: dict[str, float] = field(default_factory=dict)
    """Seconds each active schedule's due fire is late (0 when on time)."""


def per_minute(stamps: Iterable[float], now: float, minutes: int) -> tuple[int, ...]:
    """Count timestamps into ``minutes`` one-minute buckets ending at ``now``."""
    buckets = [0] * minutes
    start = now - minutes * 60
    for ts in stamps:
        index = int((ts - start) // 60)
        if 0 <= index < minutes:
            buckets[index] += 1
        elif index == minutes:  # exactly ``now``
            buckets[-1] += 1
    return tuple(buckets)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending non-empty sequence."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def throughput(done: Sequence[tuple[float, float]], failed: Sequence[tuple[float, bool]],
               died: int, now: float, window: float) -> Throughput:
    """Stats from (finished_at, duration) of completions and (failed_at, retried) of failures."""
    minutes = max(1, int(window // 60))
    durations = sorted(d for _, d in done)
    marks = None
    if durations:
        marks = (percentile(durations, 0.5), percentile(durations, 0.95),
                 percentile(durations, 0.99))
    return Throughput(
        completed_per_minute=per_minute((t for t, _ in done), now, minutes),
        failed_per_minute=per_minute((t for t, _ in failed), now, minutes),
        completed=len(done), failed=len(failed), retries=sum(1 for _, r in failed if r),
        died=died, durations=marks, duration_sum=sum(durations), duration_count=len(durations))


def collect(store: Store, *, now: float | None = None, window: float = WINDOW) -> Snapshot:
    """Read every metric (a handful of short queries)."""
    at = time.time() if now is None else now
    since = at - window
    done: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for task, queue, started, finished in store.completions_since(since):
        done[(task, queue)].append((finished, max(0.0, finished - (started or finished))))
    failed: dict[tuple[str, str], list[tuple[float, bool]]] = defaultdict(list)
    for task, queue, failed_at, retried in store.failed_attempts_since(since):
        failed[(task, queue)].append((failed_at, bool(retried)))
    died: dict[tuple[str, str], int] = defaultdict(int)
    dead_now: dict[tuple[str, str], int] = defaultdict(int)
    for task, queue, recent, total in store.dead_by_task(since):
        died[(task, queue)], dead_now[(task, queue)] = int(recent or 0), int(total)

    keys = sorted(set(done) | set(failed) | set(dead_now))
    tasks = [TaskMetrics(task, queue, throughput(done[(task, queue)], failed[(task, queue)],
                                                 died[(task, queue)], at, window),
                         dead_now[(task, queue)]) for task, queue in keys]

    by_queue: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATES, 0))
    for queue, state, count in store.counts_by_queue_and_state():
        by_queue[queue][state] = count
    oldest = {d.queue: d.oldest_waiting_age for d in store.queue_depths(at)}
    queues = []
    for queue in sorted(set(by_queue) | {q for _, q in keys}):
        mine = [k for k in keys if k[1] == queue]
        queues.append(QueueMetrics(
            queue, dict(by_queue[queue]), oldest.get(queue),
            throughput([x for k in mine for x in done[k]], [x for k in mine for x in failed[k]],
                       sum(died[k] for k in mine), at, window)))
    states = dict.fromkeys(STATES, 0)
    for counts in by_queue.values():
        for state, count in counts.items():
            states[state] = states.get(state, 0) + count
    workers = [WorkerMetrics(w.id, max(0.0, at - w.heartbeat_at), w.rss_bytes, w.cpu_percent,
                             w.running, w.concurrency, w.status)
               for w in store.list_workers()]
    return Snapshot(at, window, states, tasks, queues, workers, schedule_lags(store, at))


def schedule_lags(store: Store, now: float) -> dict[str, float]:
    """How late each active schedule's due fire is (0 when on time)."""
    rows = store.active_schedule_fires()
    return {str(n): max(0.0, now - float(t)) if t is not None else 0.0 for n, t in rows}
