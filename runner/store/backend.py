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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from runner.config import DatabaseSection
from runner.files import DEFAULT_FILE_MODE
from runner.flow import FlowLimits
from runner.sections import RetentionSection
from runner.store.event_rows import EventRow, HandlerOutcome, NewEvent
from runner.store.job_rows import Ack, Enqueued, FailureInfo, NewJob, QueueBound
from runner.store.rows import (
    AttemptError,
    ClaimResult,
    FailureRow,
    JobFilter,
    JobRow,
    LogFilter,
    LogRow,
    LogTuple,
    PauseRow,
    PruneReport,
    QueueDepth,
    Recovery,
    WorkerRow,
)
from runner.store.schedule_rows import FirePlan, FireResult, RunRow, ScheduleRow, SyncItem
from runner.store.states import JobState
from runner.store.views import (
    RECENT_SAMPLE,
    DatabaseSnapshot,
    JobPage,
    PageKey,
    QueueLoad,
    RunTimes,
    Summary,
    WorkerLoad,
)


class AttemptLog(Protocol):
    """Which attempts a worker process has started, kept where its death cannot erase it.

    Only attempts noted here are charged a crash when the process dies (jobs
    claimed ahead and never started go back uncharged).
    """

    def started(self, job_id: str, attempt: int) -> None:
        """Note, before it runs, that ``attempt`` of ``job_id`` starts."""
        ...

    def settled(self, job_ids: Sequence[str]) -> None:
        """The outcomes of these jobs are committed: forget them."""
        ...

    def close(self, *, remove: bool = True) -> None:
        """Stop noting; a clean stop forgets everything."""
        ...

@runtime_checkable
class Store(Protocol):
    """One jobs database, as every part of the runner uses it (see the module docstring)."""

    @property
    def path(self) -> Path:
        """The SQLite file; a backend without a file returns a path naming its data
        (``location`` is what messages should show)."""
        ...

    @property
    def location(self) -> str:
        """Where the data lives, for messages: a file path, or a URL without its password."""
        ...

    @property
    def readonly(self) -> bool:
        """True when this handle may only read (the dashboard's polls)."""
        ...

    def close(self) -> None:
        """Close this thread's connection (others close with their threads) and the
        wake-up sender (both open again on next use)."""
        ...

    # -- wake-ups and change detection ---------------------------------------------------

    def wakeup(self) -> None:
        """Tell the waiting workers of every process that jobs were written; never raises.

        SQLite pokes Unix sockets beside the file; a server backend uses its own
        notification (``NOTIFY``, a list push).
        """
        ...

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``on_wake`` (from a thread of the store's) after each :meth:`wakeup`.

        Returns the function that stops listening, or None when wake-ups are
        unavailable (the worker then polls every ``poll_interval``).
        """
        ...

    def refresh(self) -> None:
        """Before a read of a long-lived read-only handle: drop a snapshot left open and
        reconnect when the data moved (a file replaced by a restore).

        Raises:
            DatabaseUnavailable: the data is gone (the file was deleted).
        """
        ...

    def attempt_log(self, owner: str) -> AttemptLog:
        """Where worker ``owner`` notes the attempts it starts (see :class:`AttemptLog`)."""
        ...

    # -- jobs: the state machine ---------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob], *, now: float, queue_size: int = 0,
                bounds: Mapping[str, QueueBound] | None = None) -> Enqueued:
        """Insert jobs (``scheduled`` when ``run_at`` is later than ``now``) in one step.

        A job whose ``unique_key`` names a job in its ``unique_states`` (default:
        waiting or running) created within ``unique_for`` seconds is not written;
        the result maps it to that job. Each queue holds at most its bound in
        ``bounds`` (else ``queue_size``, ``reject``; 0 = unbounded) waiting jobs,
        even with concurrent producers: ``drop_oldest`` cancels the oldest
        waiting ones in the same step (reason given, counted as dropped).

        Raises:
            QueueFull: a ``reject`` or ``block`` queue would overflow (``.queue``,
                ``.room``); nothing is written. A ``reject`` is counted as rejected.
            DuplicateJob: a job has the id of a new one.
        """
        ...

    def claim(self, *, now: float, owner: str, lease_seconds: float, want: int,
              busy: bool = False, queues: Sequence[str] = (), acks: Sequence[Ack] = (),
              labels: Mapping[str, tuple[str, str]] | None = None,
              limits: FlowLimits | None = None) -> ClaimResult:
        """Write ``acks`` and claim up to ``want`` due jobs under a lease, in one step.

        Each ack's results and next steps are written with it. With ``limits``, the
        claim honours them in the same step (see :mod:`runner.flow`): highest
        effective priority first (aging), FIFO within a priority; queues share
        claims by weight (smooth weighted round robin, counters kept in the store);
        no queue, task or concurrency key runs more jobs at once than its limit
        (counting ``executing`` jobs of every worker); no queue or task starts
        faster than its rate (token buckets kept in the store). A job held back
        stays waiting with no attempt spent; when nothing is claimed, ``next_due``
        is the next token of a bucket that holds jobs back, if sooner.
        """
        ...

    def complete(self, acks: Sequence[Ack],
                 labels: Mapping[str, tuple[str, str]] | None = None) -> None:
        """Record finished attempts: ``executing`` → ``completed``."""
        ...

    def retry(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
              now: float, run_at: float | None, reason: str | None, data: bytes | None = None,
              results: Sequence[tuple[str, bytes]] = (), jobs: Sequence[NewJob] = (),
              acks: Sequence[Ack] = ()) -> None:
        """A failed attempt with another to come: ``executing`` → ``retrying`` at ``run_at``."""
        ...

    def bury(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
             now: float, reason: str | None, results: Sequence[tuple[str, bytes]] = (),
             jobs: Sequence[NewJob] = (), acks: Sequence[Ack] = ()) -> None:
        """A failed attempt with none to come: ``executing`` → ``dead``."""
        ...

    def cancel_attempt(self, job_id: str, *, now: float, reason: str | None,
                       results: Sequence[tuple[str, bytes]] = ()) -> None:
        """Revoked or expired when its worker looked: → ``cancelled``."""
        ...

    def hand_back(self, job_id: str, *, now: float, reason: str | None,
                  results: Sequence[tuple[str, bytes]] = ()) -> None:
        """Interrupted: ``executing`` → ``available``, the attempt counted."""
        ...

    def release(self, job_id: str, run_at: float) -> None:
        """Claimed too early: back to ``scheduled`` at ``run_at``, the attempt not used."""
        ...

    def unclaim(self, job_ids: Sequence[str]) -> None:
        """Claimed but never started (a stopping worker): back to ``available``."""
        ...

    def rearm(self, job: NewJob, *, now: float, queue_size: int = 0) -> bool:
        """A finished job runs again as the same row; False when it is not finished."""
        ...

    def cancel_waiting(self, *, now: float, reason: str, due: bool) -> int:
        """Cancel every waiting job due by ``now`` (or, ``due`` False, due later)."""
        ...

    def set_progress(self, job_id: str, done: float, total: float | None,
                     message: str | None) -> None:
        """Record a running job's progress."""
        ...

    def has_future_jobs(self) -> bool:
        """True when some job waits for a later ``run_at``."""
        ...

    def job_is_final(self, job_id: str) -> bool:
        """True when the job completed, died or was cancelled (or there is no such job)."""
        ...

    # -- flow control: pause, cancel, backpressure ---------------------------------------

    def set_pause(self, kind: str, name: str, paused: bool, *, now: float,
                  by: str | None = None) -> bool:
        """Pause or resume a ``queue`` or ``task`` (claims skip paused ones); True if changed."""
        ...

    def seed_pauses(self, kind: str, names: Sequence[str], *, now: float) -> None:
        """Pause the named queues or tasks that have no recorded state (settings' initial state)."""
        ...

    def list_pauses(self) -> list[PauseRow]:
        """Every recorded pause or resume."""
        ...

    def request_cancel(self, job_id: str, *, by: str, now: float) -> JobState | None:
        """Cancel a waiting job now, or ask the worker of a running one to stop it.

        Returns the state the job was in (None: no such job); other states are left alone.
        """
        ...

    def cancel_requests(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Of these jobs, those whose running attempt was asked to stop: id -> requester."""
        ...

    def backpressure_totals(self) -> dict[str, tuple[int, int]]:
        """Per queue: (jobs rejected, jobs dropped) by full queues, lifetime counters."""
        ...

    # -- workers -------------------------------------------------------------------------

    def register(self, owner: str, *, concurrency: int, queues: tuple[str, ...],
                 now: float | None = None) -> None:
        """Record a worker process as running."""
        ...

    def heartbeat(self, owner: str, job_ids: list[str], *, lease_seconds: float,
                  rss_bytes: int | None = None, cpu_percent: float | None = None,
                  processed: int | None = None, status: str | None = None,
                  running: int | None = None, now: float | None = None) -> None:
        """Say this worker is alive and extend the leases of the jobs it runs."""
        ...

    def mark_stopped(self, owner: str, now: float | None = None) -> None:
        """Record a clean exit of a worker process."""
        ...

    def recover_orphans(self, *, crash_limit: int, me: str | None = None,
                        now: float | None = None) -> Recovery:
        """Requeue (or bury) jobs whose worker is gone."""
        ...

    def prune_workers(self, *, older_than: float, now: float | None = None) -> int:
        """Forget worker rows that stopped or went silent long ago."""
        ...

    # -- logs ----------------------------------------------------------------------------

    def write_logs(self, rows: Sequence[LogTuple], *, trim_to: int = 0,
                   deadline: float = 5.0) -> None:
        """Insert records in one transaction; with ``trim_to``, keep about that many newest."""
        ...

    def read_logs(self, filters: LogFilter | None = None, *, after_id: int = 0,
                  limit: int = 200) -> list[LogRow]:
        """Records after ``after_id``, oldest first; with ``after_id`` 0, the last ``limit``."""
        ...

    def tail_logs(self, *, after_id: int = 0, job_id: str | None = None, min_level: int = 0,
                  text: str | None = None, limit: int = 500) -> list[LogRow]:
        """Stored log records after ``after_id``, oldest first; with 0, the newest ``limit``."""
        ...

    def job_log_bytes(self, job_id: str) -> int:
        """Message bytes stored for one job."""
        ...

    # -- schedules -----------------------------------------------------------------------

    def sync_schedules(self, items: Sequence[SyncItem], *, now: float,
                       orphan_others: bool = True) -> None:
        """Upsert definitions; rows missing from ``items`` are marked orphaned (never deleted)."""
        ...

    def ensure_schedule(self, item: SyncItem, *, now: float) -> None:
        """Insert a schedule's row if there is none yet (control before the first sync)."""
        ...

    def due_schedules(self, now: float) -> list[tuple[str, float]]:
        """``(name, next_fire_at)`` of active schedules due at ``now``."""
        ...

    def next_due(self) -> float | None:
        """The earliest ``next_fire_at`` of an active schedule."""
        ...

    def data_version(self) -> int:
        """A number that changes when another connection commits (the scheduler's cheap
        poll): SQLite's ``data_version``; a server backend counts its notifications."""
        ...

    def fire(self, plans: Sequence[FirePlan], *, clock: Callable[[], float],
             queue_size: int) -> list[FireResult]:
        """Fire due schedules in one transaction (see module docstring); returns the outcomes."""
        ...

    def record_manual_run(self, name: str, job: NewJob, *, now: float, queue_size: int) -> None:
        """Insert an extra run's job and slot record; the schedule's next fire is untouched."""
        ...

    def set_paused(self, name: str, paused: bool, *, now: float,
                   next_fire_at: float | None = None) -> bool:
        """Pause or resume; resuming sets ``next_fire_at`` (no catch-up for paused time)."""
        ...

    def set_skip_next(self, name: str, skip: bool = True, *, now: float) -> bool:
        """Ask to skip (or no longer skip) the next slot; False when there is no such schedule."""
        ...

    def list_schedules(self, name: str | None = None) -> list[ScheduleRow]:
        """Every schedule (or the one named), by name, with its last job's state."""
        ...

    def get_schedule(self, name: str) -> ScheduleRow | None:
        """One schedule, or None."""
        ...

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[RunRow]:
        """The most recent fired slots of a schedule, oldest first."""
        ...

    def prune_runs(self, *, before: float) -> int:
        """Delete slot records fired before ``before``; returns how many."""
        ...

    def count_schedules(self) -> int:
        """How many schedules the database holds."""
        ...

    # -- events --------------------------------------------------------------------------

    def insert_events(self, events: Sequence[NewEvent],
                      dispatch: Sequence[tuple[NewJob, Sequence[str]]], *, now: float,
                      dedupe_window: float, deadline: float) -> list[str]:
        """Write events and their dispatch jobs in one transaction; returns the event ids."""
        ...

    def pending_events(self, ids: Sequence[str]) -> list[EventRow]:
        """The events among ``ids`` that are still waiting for their dispatch."""
        ...

    def due_pending_events(self, *, now: float, limit: int) -> list[EventRow]:
        """The oldest undispatched events whose dispatch job is due (not delayed)."""
        ...

    def fan_out(self, deliveries: Mapping[str, Sequence[NewJob]], *, settle: Sequence[str] = (),
                now: float | None = None) -> dict[str, int]:
        """Dispatch pending events: insert their handler jobs and mark them, in one transaction."""
        ...

    def add_deliveries(self, event_id: str, jobs: Sequence[NewJob], *,
                       now: float | None = None) -> bool:
        """Replay: insert new handler jobs linked to an event, counting the delivery.

        Returns False, writing nothing, when the first job exists already (the same
        replay ran before and must not deliver twice).
        """
        ...

    def get_event(self, event_id: str) -> EventRow:
        """One event by id, or by a unique start or end of its id."""
        ...

    def event_of_job(self, job_id: str) -> EventRow | None:
        """The event a job was created for, or None."""
        ...

    def list_events(self, *, pattern: str | None = None, since: float | None = None,
                    status: str | None = None, limit: int = 100) -> list[EventRow]:
        """Events newest first, filtered by name pattern, emit time and status."""
        ...

    def handler_outcomes(self, event_ids: Sequence[str]) -> dict[str, list[HandlerOutcome]]:
        """Per event, each handler's outcome (from its newest linked job), by handler name."""
        ...

    def prune_events(self, older_than_days: float, *, now: float | None = None, batch: int = 1000,
                     dry_run: bool = False) -> int:
        """Delete events emitted more than ``older_than_days`` ago; returns how many."""
        ...

    def count_events(self, status: str | None = None) -> int:
        """How many events are stored (with ``status``, when given)."""
        ...

    def count_unhandled(self) -> int:
        """Events no handler took."""
        ...

    def unhandled_events(self, *, limit: int = 200) -> list[EventRow]:
        """Events no handler took, newest first."""
        ...

    # -- queries -------------------------------------------------------------------------

    def list_jobs(self, filters: JobFilter | None = None, *, limit: int = 100,
                  offset: int = 0) -> list[JobRow]:
        """Jobs matching ``filters``, newest first, one page at a time."""
        ...

    def count_jobs(self, filters: JobFilter | None = None) -> int:
        """How many jobs match ``filters``."""
        ...

    def job_ids(self, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
        """Ids of the jobs matching ``filters`` (for bulk actions)."""
        ...

    def get_job(self, job_id: str) -> JobRow:
        """One job by id, or by a unique start or end of its id."""
        ...

    def job_errors(self, job_id: str) -> list[AttemptError]:
        """Every failed attempt of a job, oldest first (the timeline)."""
        ...

    def counts_by_state(self) -> dict[str, int]:
        """Number of jobs in each state (states with none are 0)."""
        ...

    def queue_depths(self, now: float | None = None) -> list[QueueDepth]:
        """Waiting and running jobs per queue, with the age of the oldest due waiting job."""
        ...

    def list_workers(self, *, include_stopped: bool = False) -> list[WorkerRow]:
        """Worker processes, most recent heartbeat first."""
        ...

    def stored_result(self, job_id: str) -> bytes | None:
        """The result stored for a job (peeked, never consumed), or None."""
        ...

    # -- job_control ---------------------------------------------------------------------

    def retry_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        """Make finished or retrying jobs waiting again, due now; returns how many changed."""
        ...

    def cancel_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        """Cancel jobs that have not started; returns how many changed."""
        ...

    def discard_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        """Mark waiting or dead jobs cancelled ("discarded"); returns how many changed."""
        ...

    def redispatch_event(self, event_id: str, dispatch_job: str, *, now: float) -> None:
        """Put an event back to ``pending`` and make its dispatch job due again, in one step."""
        ...

    def count_for_bulk(self, filters: JobFilter, states: Sequence[str]) -> tuple[int, int]:
        """(jobs, highest rowid) of the jobs of ``filters`` in ``states``: a bulk action's set."""
        ...

    def run_bulk(self, verb: str, filters: JobFilter, states: Sequence[str], *, up_to_rowid: int,
                 now: float, chunk: int = 500) -> int:
        """Retry now or discard a counted set, oldest first, in short transactions; how many."""
        ...

    # -- maintenance ---------------------------------------------------------------------

    def prune_retention(self, section: RetentionSection, *, now: float | None = None,
                        dry_run: bool = False) -> PruneReport:
        """Delete what retention says is old; with ``dry_run`` only count it."""
        ...

    # -- stats ---------------------------------------------------------------------------

    def count_in_state(self, state: JobState) -> int:
        """Jobs in one state (a covering range of the ``(state, created_at)`` index)."""
        ...

    def completed_per_minute(self, start: float) -> list[tuple[int, int]]:
        """(minute index from ``start``, completions) for jobs finished since ``start``."""
        ...

    def failed_per_minute(self, start: float) -> list[tuple[int, int]]:
        """(minute index from ``start``, failed attempts) for attempts failed since ``start``."""
        ...

    def finished_per_second(self, since: float,
                            until: float | None = None) -> tuple[dict[int, int], dict[int, int]]:
        """Completions and failed attempts per whole second in ``[since, until)``."""
        ...

    def queue_oldest(self, now: float) -> list[tuple[str, float | None]]:
        """Each queue with waiting jobs and the ``run_at`` of its oldest due one."""
        ...

    def waiting_in_queue(self, queue: str) -> int:
        """Waiting jobs of one queue, read through its partial index."""
        ...

    def running_per_queue(self) -> dict[str, int]:
        """Running jobs per queue."""
        ...

    def running_jobs(self) -> list[tuple[str | None, str, str, float | None]]:
        """(lease owner, id, task, started_at) of every running job, oldest start first."""
        ...

    def unfinished_by_queue(self) -> list[tuple[str, str, int]]:
        """(queue, state, jobs) of waiting, running and dead jobs (finished history not read)."""
        ...

    def counts_by_queue_and_state(self) -> list[tuple[str, str, int]]:
        """(queue, state, jobs) for every pair that has jobs."""
        ...

    def job_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                 offset: int = 0) -> list[JobRow]:
        """One page of jobs, newest first, always read through an index."""
        ...

    def count_jobs_capped(self, filters: JobFilter | None = None, *,
                          cap: int = 10_000) -> tuple[int, bool]:
        """How many jobs match, counting no further than ``cap``; returns (count, capped)."""
        ...

    def failure_rows(self, *, limit: int = 200) -> list[FailureRow]:
        """Retrying and dead jobs grouped by error type and message, biggest group first."""
        ...

    def failure_group_ids(self, error_type: str | None, message: str | None, *,
                          limit: int = 100_000) -> list[str]:
        """Ids of the retrying and dead jobs of one failure group (for bulk actions)."""
        ...

    def failure_signature(self) -> tuple[int, int]:
        """Changes whenever a failure group may have: (failed jobs, newest failed attempt id)."""
        ...

    def completions_since(self, since: float) -> list[tuple[str, str, float | None, float]]:
        """(task, queue, started_at, finished_at) of jobs completed since ``since``."""
        ...

    def failed_attempts_since(self, since: float) -> list[tuple[str, str, float, int]]:
        """(task, queue, failed_at, retried) of attempts failed since ``since``."""
        ...

    def dead_by_task(self, since: float) -> list[tuple[str, str, int | None, int]]:
        """(task, queue, died since ``since``, dead now) per task and queue with dead jobs."""
        ...

    def active_schedule_fires(self) -> list[tuple[str, float | None]]:
        """(name, next_fire_at) of every active schedule."""
        ...

    def charge_stuck(self, job_id: str, attempt: int, owner: str, message: str, *,
                     crash_limit: int, now: float | None = None) -> str | None:
        """An attempt stuck past its timeout is charged a crash, as a worker death.

        Returns the job's new state (``available`` or ``dead``), or None when that
        attempt was no longer running under ``owner``.
        """
        ...

    # -- the dashboard's panels ----------------------------------------------------------

    def summary(self, now: float | None = None,
                rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None, *,
                done_last_minute: int | None = None, stale_after: float = 15.0) -> Summary:
        """Counts of the live states and dead jobs, rates and the latency.

        ``rates`` are the per-minute buckets of :meth:`throughput` when the caller
        has them; ``done_last_minute`` the completions of the last 60 s when the
        caller keeps them; a worker whose heartbeat is older than ``stale_after``
        is not alive, and the jobs it holds count as stalled.
        """
        ...

    def live_worker_ids(self, now: float, stale_after: float) -> frozenset[str]:
        """Workers registered as running whose heartbeat is younger than ``stale_after``."""
        ...

    def stalled_count(self, now: float, stale_after: float) -> int:
        """Executing jobs whose lease ran out or whose worker's heartbeat is stale or gone."""
        ...

    def throughput(self, now: float | None = None, *,
                   minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Completions and failed attempts per clock-aligned minute, oldest first."""
        ...

    def queue_loads(self, now: float | None = None) -> list[QueueLoad]:
        """Waiting and running jobs per queue and the age of the oldest due one."""
        ...

    def recent_run_times(self, now: float | None = None, *, sample: int = RECENT_SAMPLE
                         ) -> tuple[RunTimes, dict[str, RunTimes]]:
        """p50/p95 run time and completions per minute, overall and per queue, read from
        the newest ``sample`` completions (a fixed cost)."""
        ...

    def worker_loads(self, *, include_stopped: bool = False) -> list[WorkerLoad]:
        """Registered workers with the jobs each holds a lease on."""
        ...

    def keyset_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                    after: PageKey | None = None, oldest_first: bool = False,
                    sort: str = "newest", now: float | None = None) -> JobPage:
        """One page of jobs in ``sort`` order (see ``JOB_SORTS``) from ``after`` on.

        Raises:
            ValueError: ``sort`` is not one of ``JOB_SORTS``.
        """
        ...

    def page_key_at(self, at: float, filters: JobFilter | None = None, *,
                    oldest_first: bool = False) -> PageKey:
        """The page key that starts a listing at the time ``at``."""
        ...

    # -- the metrics scrape --------------------------------------------------------------

    def read_snapshot(self, *, now: float | None = None,
                      heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
        """The database-wide figures of a scrape (cost bounded by tasks x queues)."""
        ...

    def waiting_queues(self) -> list[str]:
        """Queues with waiting jobs."""
        ...

    # -- huey's key/value store and queue introspection ----------------------------------

    def kv_put(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` (a result, a revocation, a lock), replacing it."""
        ...

    def kv_peek(self, key: str, *, now: float) -> bytes | None:
        """The live value of ``key`` (an expired one reads as missing), or None."""
        ...

    def kv_peek_many(self, keys: Sequence[str], *, now: float) -> dict[str, bytes]:
        """The live values of ``keys`` that exist."""
        ...

    def kv_pop(self, key: str, *, now: float) -> bytes | None:
        """Delete ``key`` and return its live value, or None."""
        ...

    def kv_delete(self, key: str, *, now: float) -> bool:
        """Delete ``key``; True when it held a live value."""
        ...

    def kv_put_if_empty(self, key: str, value: bytes, *, ttl: float | None,
                        now: float) -> bool:
        """Store ``value`` unless ``key`` holds a live one (a lock); True when stored.
        With ``ttl`` the key expires ``ttl`` seconds after ``now``."""
        ...

    def kv_items(self) -> dict[str, bytes]:
        """Every stored key and value."""
        ...

    def kv_count(self) -> int:
        """How many keys are stored."""
        ...

    def kv_flush(self) -> None:
        """Delete every key."""
        ...

    def counter_incr(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to a named counter (created at 0); returns the new value."""
        ...

    def counter_delete(self, key: str) -> None:
        """Forget a named counter."""
        ...

    def counter_flush(self) -> None:
        """Forget every named counter."""
        ...

    def waiting_size(self, *, now: float, due: bool) -> int:
        """Waiting jobs due by ``now`` (``due``) or due later (not ``due``)."""
        ...

    def waiting_payloads(self, *, now: float, due: bool, limit: int | None) -> list[bytes]:
        """The payloads of waiting jobs due by ``now`` (in claim order) or later (by time)."""
        ...

    # -- named leases --------------------------------------------------------------------

    def take_lease(self, name: str, owner: str, ttl: float, *,
                   now: float | None = None) -> bool:
        """Take lease ``name`` if free or expired, renew it if ours; True when we hold it."""
        ...

    def release_lease(self, name: str, owner: str) -> None:
        """Give lease ``name`` up (a clean stop), so another holder can take it at once."""
        ...

    # -- upkeep --------------------------------------------------------------------------

    def enable_space_reclaim(self, *, me: str | None = None) -> str | None:
        """At a worker's start: make pruned rows give their space back when that is safe;
        returns what was done or why not, for the log (None: nothing to say)."""
        ...

    def space_reclaim_note(self) -> str | None:
        """Why pruned rows do not give space back and what to run about it, or None."""
        ...

    def vacuum(self, *, force: bool = False) -> str:
        """Rewrite the data so pruned rows give their space back; returns what was done.

        Raises:
            DatabaseLocked: workers are running and ``force`` is False.
        """
        ...

    def data_dir(self) -> Path | None:
        """The local directory whose free space the data needs (None: not on this host)."""
        ...

    def probe_write(self, size: int, *, deadline: float, commit: bool = False) -> None:
        """Allocate about ``size`` bytes: rolled back, or with ``commit`` written and deleted.

        Raises:
            DiskFull: there was no room.
            DatabaseLocked: no write could be had within ``deadline`` seconds.
        """
        ...

    def integrity_problem(self, *, full_check_below: int) -> str | None:
        """None when the data reads as a sound jobs database, else the problem.

        The full check (O(size)) runs only on data smaller than ``full_check_below`` bytes.
        """
        ...

    def verify(self) -> None:
        """Make sure this opens as a jobs database.

        Raises:
            DatabaseUnavailable: it cannot be opened.
            DatabaseCorrupt: it is not a jobs database.
            DatabaseLocked: it stayed locked.
        """
        ...

    # -- integrity -----------------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        """True when the database holds table ``name`` (newer features add tables)."""
        ...

    def quick_check(self) -> str:
        """SQLite's ``quick_check(1)``: ``"ok"`` or the first problem found (O(file size))."""
        ...


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
