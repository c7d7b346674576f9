"""Queues as ``python -m runner queues`` and the dashboard's Queues view show them.

Per queue: jobs by state, how long the oldest due job has waited, the limits
of ``[queues.NAME]``, the rate of the last minute, whether it is paused (and
by whom), and what its bound refused or dropped. "waiting" counts the jobs ready
to run now (``available``); jobs due later and failed jobs waiting out a backoff
are counted apart (``scheduled``, ``retrying``).

A queue is listed when ``[queues.NAME]`` names it (``default`` always), when it
holds jobs that are not finished (or dead ones), when a pause is recorded for it,
or when a job of it completed or failed within the rate's window: a queue that
just drained its burst stays in view, with its rate, until that window passes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from runner.config import Settings
from runner.readmodel.dashboard import live_worker_ids
from runner.readmodel.health import heartbeat_limit
from runner.store.backend import Store
from runner.store.rows import JobFilter, PauseRow
from runner.store.states import JobState

#: Seconds the current rate is measured over.
RATE_WINDOW = 60.0


@dataclass(frozen=True)
class QueueInfo:
    """One queue's state, limits and counters."""

    name: str
    waiting: int
    """Due now (``available``)."""
    scheduled: int
    running: int
    """Executing under a live worker."""
    retrying: int
    dead: int
    oldest_waiting: float | None
    """Seconds the oldest due job has waited; None when none waits."""
    per_minute: float
    """Jobs completed over the last minute (:data:`RATE_WINDOW`)."""
    paused: bool
    """Whether workers hold its jobs: the state recorded in the database."""
    paused_by: str | None
    paused_at: float | None
    weight: int
    concurrency: int
    rate_limit: str
    """As ``[queues.NAME] rate_limit`` writes it ("" = none)."""
    max_size: int
    """0: unbounded."""
    on_full: str
    rejected: int
    dropped: int
    stalled: int = 0
    """Executing under a worker that is gone (its process, or its heartbeat): nothing runs
    them until a worker requeues them, as the dashboard's strip counts them."""
    burst: int = 0
    """Starts its rate allows back to back (0: no rate)."""
    pause_pending: bool = False
    """``[queues.NAME] paused = true`` with no state recorded yet: the next worker
    that starts or reloads its settings pauses the queue."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def rate_text(self) -> str:
        """The rate with the burst in force ("" without a rate)."""
        if not self.rate_limit or "burst" in self.rate_limit.lower():
            return self.rate_limit  # a burst written there is the one in force (checked at load)
        return f"{self.rate_limit} burst {self.burst}"


@dataclass(frozen=True)
class QueuesView:
    """Every queue, and the paused tasks."""

    queues: list[QueueInfo]
    paused_tasks: list[PauseRow]


def queues_view(store: Store, settings: Settings, now: float) -> QueuesView:
    """Read every queue's figures (a handful of reads; see the module docstring)."""
    counts: dict[str, Counter[str]] = {}
    for queue, state, n in store.unfinished_by_queue():
        counts.setdefault(queue, Counter())[state] += n
    oldest = dict(store.queue_oldest(now))
    window_start = now - RATE_WINDOW
    done = Counter(queue for _, queue, _, _ in store.completions_since(window_start))
    failed = {queue for _, queue, _, _ in store.failed_attempts_since(window_start)}
    pauses = store.list_pauses()
    queue_pauses = {p.name: p for p in pauses if p.kind == "queue"}
    totals = store.backpressure_totals()
    executing = sum(c[JobState.EXECUTING] for c in counts.values())
    stalled = _stalled_by_queue(store, settings, now, executing) if executing else Counter()
    names = sorted({*counts, *settings.queues, *queue_pauses, *oldest, *done, *failed})
    rows = []
    for name in names:
        c = counts.get(name, Counter())
        section = settings.queue_section(name)
        # Workers hold a queue by its recorded state only; the file's `paused` is recorded
        # by a worker's start or reload, so until then it is shown as pending, not in force.
        pause = queue_pauses.get(name)
        paused = pause is not None and pause.paused
        rate = section.rate
        since = oldest.get(name)
        rejected, dropped = totals.get(name, (0, 0))
        rows.append(QueueInfo(
            name=name, waiting=c[JobState.AVAILABLE], scheduled=c[JobState.SCHEDULED],
            running=c[JobState.EXECUTING] - stalled[name], retrying=c[JobState.RETRYING],
            dead=c[JobState.DEAD],
            oldest_waiting=None if since is None else max(0.0, now - since),
            per_minute=done[name] * 60.0 / RATE_WINDOW, paused=paused,
            paused_by=pause.changed_by if pause is not None else None,
            paused_at=pause.changed_at if pause is not None else None,
            weight=section.weight, concurrency=section.concurrency,
            rate_limit=section.rate_limit, max_size=section.bound(settings.worker.queue_size),
            on_full=section.on_full, rejected=rejected, dropped=dropped,
            stalled=stalled[name], burst=rate.burst if rate is not None else 0,
            pause_pending=pause is None and section.paused))
    tasks = [p for p in pauses if p.kind == "task" and p.paused]
    return QueuesView(rows, tasks)


def _stalled_by_queue(store: Store, settings: Settings, now: float,
                      executing: int) -> Counter[str]:
    """Per queue, the executing jobs whose worker is not alive (the Jobs list's rule)."""
    live = live_worker_ids(store, now, heartbeat_limit(settings, settings.health),
                           settings.runner.node_name or None)
    return Counter(j.queue for j in store.list_jobs(
        JobFilter(state=JobState.EXECUTING.value), limit=executing) if j.lease_owner not in live)
