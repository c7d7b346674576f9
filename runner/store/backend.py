"""The storage seam: what a backend provides, typed as one :class:`Store` protocol.

The worker, the scheduler, events, the CLI, metrics and the dashboard reach
the data through these operations; SQLite implements them now
(:class:`runner.store.sqlite.SqliteStore`), and a PostgreSQL or Redis backend
implements the same ones. It is the delivery contract, not an SQL dialect:

* enqueue (batch, unique keys, queue bounds) and claim a batch under a lease,
  with the completions that piled up written in the same step;
* complete, retry, bury, hand back, release: each outcome in one atomic step
  with the attempt's error; extend leases; requeue the jobs of dead workers
  and charge a crash only to attempts that started;
* fire a schedule slot exactly once (compare-and-set), insert an event and
  fan it out idempotently, store log lines, prune;
* the reads the CLI, metrics and the dashboard need.

Rows travel as the dataclasses of :mod:`runner.store.job_rows`,
:mod:`runner.store.rows`, :mod:`runner.store.event_rows`,
:mod:`runner.store.schedule_rows` and :mod:`runner.store.views`; states as
:class:`~runner.store.states.JobState`. Callers import only those, this module
and :mod:`runner.store.factory` (``tests/unit/test_seam.py`` holds them to it).

What a file-less backend provides itself: wake-ups (:meth:`Store.wakeup`,
:meth:`Store.listen`: ``NOTIFY``/``LISTEN``, a list push and a blocking pop),
change detection for the scheduler (:meth:`Store.data_version`), the record of
started attempts (:meth:`Store.attempt_log`: a row or key per worker), upkeep
(:meth:`Store.vacuum`, :meth:`Store.integrity_problem`, :meth:`Store.data_dir`
None when the data is not on this host).

How a backend plugs in:

1. a package ``runner/store/NAME/`` with a class implementing :class:`Store`
   and a module-level ``BACKEND = Backend("NAME", open_fn, errors=..., bugs=...)``,
   where ``open_fn(request: StoreRequest) -> Store`` connects, and unless
   ``request.readonly`` creates or migrates the schema;
2. one line in :data:`runner.store.factory.MODULES` (``"NAME": "runner.store.NAME"``),
   the URL schemes it answers in :data:`runner.store.factory.SCHEMES`, and the
   name in :data:`runner.config.QUEUE_TYPES` so ``[worker] queue_type = "NAME"``
   validates;
3. a fixture in ``tests/conformance/conftest.py`` (``BACKENDS``): the one suite
   then runs against it.

Settings choose it: ``[worker] queue_type = "NAME"`` and ``[runner] database =
"scheme://..."``; ``python -m tui --db scheme://...`` picks it by scheme.

The protocol is the union of one protocol per concern, each in its own module
(a backend may implement them the same way, one mixin per concern):

* :mod:`runner.store.handle`: where the data is, closing, wake-ups, change detection;
* :mod:`runner.store.job_machine`: the job state machine (enqueue, claim, outcomes);
* :mod:`runner.store.flow_control`: pauses, cancel requests, backpressure counts;
* :mod:`runner.store.worker_presence`: workers, heartbeats, orphans, the attempt
  log, named leases;
* :mod:`runner.store.schedule_store`: schedules and their slots fired once;
* :mod:`runner.store.event_store`: events, their dispatch and fan-out;
* :mod:`runner.store.log_store`: log records;
* :mod:`runner.store.job_queries`: the CLI's reads of jobs and workers;
* :mod:`runner.store.bulk_control`: retry, cancel, discard of existing jobs, in bulk;
* :mod:`runner.store.job_stats`: counts, rates and failures for metrics and health;
* :mod:`runner.store.dashboard_panels`: the dashboard's bounded reads;
* :mod:`runner.store.metrics_scrape`: the database-wide snapshot of a scrape;
* :mod:`runner.store.key_values`: huey's key/value store, counters, queue sizes;
* :mod:`runner.store.upkeep`: retention, space reclaim, write probes, integrity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from runner.config import DatabaseSection
from runner.files import DEFAULT_FILE_MODE
from runner.store.bulk_control import ControlStore
from runner.store.dashboard_panels import DashboardStore
from runner.store.event_store import EventsStore
from runner.store.flow_control import FlowControlStore
from runner.store.handle import StoreHandle
from runner.store.job_machine import JobsStore
from runner.store.job_queries import QueriesStore
from runner.store.job_stats import StatsStore
from runner.store.key_values import KeyValuesStore
from runner.store.log_store import LogsStore
from runner.store.metrics_scrape import ScrapeStore
from runner.store.schedule_store import SchedulesStore
from runner.store.upkeep import UpkeepStore
from runner.store.worker_presence import AttemptLog, WorkersStore

__all__ = ["AttemptLog", "Backend", "Store", "StoreRequest"]


@runtime_checkable
class Store(StoreHandle, JobsStore, FlowControlStore, WorkersStore, SchedulesStore, EventsStore,
            LogsStore, QueriesStore, ControlStore, StatsStore, DashboardStore, ScrapeStore,
            KeyValuesStore, UpkeepStore, Protocol):
    """One jobs database, as every part of the runner uses it (see the module docstring)."""


@dataclass(frozen=True)
class StoreRequest:
    """What a backend's opener is asked for."""

    database: str
    """A file path (absolute) or a URL."""
    options: DatabaseSection
    readonly: bool = False
    """Reads only: no schema set-up, no writes (the dashboard's polls, health)."""
    shared: bool = False
    """A handle of its own with one connection that the caller's threads take turns on
    (the dashboard), instead of the process-wide one."""
    file_mode: int = DEFAULT_FILE_MODE
    connections: int = 0
    """How many threads may use the handle at once (a server backend's pool size);
    0 for the backend's default."""
    reach_within: float | None = None
    """A server backend answers within these seconds at the open, or the open raises:
    for a look that a person waits on (a command's check that the jobs database is
    there). None: the first use waits as long as a writer does, riding out a restart."""
    lock_wait: float | None = None
    """Seconds a statement waits for a lock another session holds before the store raises
    DatabaseLocked: for a person or a probe waiting on the answer (the CLI, ``health``,
    the dashboard). None: as long as the lock is held (a worker, whose statements queue
    behind a migration or a long maintenance statement and must not fail for it). A
    server backend's bound; SQLite has ``busy_timeout`` on every connection."""


@dataclass(frozen=True)
class Backend:
    """A storage backend as the factory knows it."""

    name: str
    open: Callable[[StoreRequest], Store]
    """Opens (and, unless read-only, creates or migrates) the data."""
    errors: tuple[type[BaseException], ...] = ()
    """Driver exceptions that mean the data is unreachable, locked or damaged."""
    bugs: tuple[type[BaseException], ...] = ()
    """Driver exceptions among ``errors`` that mean a wrong statement (a bug in the code)."""
