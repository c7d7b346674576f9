"""The SQLite backend of the storage seam: :class:`SqliteStore` over one jobs file.

Every SQLite statement lives in this package, in the module of its concern:
the job state machine (:mod:`.transitions`, with the tuned claim, ack and
enqueue), connections (:mod:`.db`), indexes and triggers (:mod:`.models`),
and the events, schedules, logs, workers, queries, stats, dashboard and
scrape reads, key/value, counters, leases and maintenance modules. Each method
here is one transaction (``BEGIN IMMEDIATE``) or one read. The backend
registers itself as :data:`BACKEND` (see :mod:`runner.store.factory`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import peewee

from runner.errors import DuplicateJob, QueueFull
from runner.flow import FlowLimits
from runner.sections import RetentionSection
from runner.store.backend import AttemptLog, Backend, StoreRequest
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
from runner.store.sqlite import cancels as _cancels
from runner.store.sqlite import dashboard_reads as _panels
from runner.store.sqlite import events as _events
from runner.store.sqlite import integrity as _integrity
from runner.store.sqlite import job_control as _job_control
from runner.store.sqlite import kv as _kv
from runner.store.sqlite import leases as _leases
from runner.store.sqlite import logs as _logs
from runner.store.sqlite import maintenance as _maintenance
from runner.store.sqlite import pauses as _pauses
from runner.store.sqlite import queries as _queries
from runner.store.sqlite import schedules as _schedules
from runner.store.sqlite import scrape_reads as _scrape
from runner.store.sqlite import stats as _stats
from runner.store.sqlite import transitions as _transitions
from runner.store.sqlite import workers as _workers
from runner.store.sqlite.counters import count_backpressure, read_backpressure
from runner.store.sqlite.db import Database, open_database
from runner.store.sqlite.running_file import RunningFile, running_path
from runner.store.sqlite.schema import prepare_database
from runner.store.sqlite.wakeup import Listener, Notifier
from runner.store.states import FINAL, FUTURE, JobState, sql_in
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


class SqliteStore:
    """:class:`runner.store.backend.Store` on a SQLite file (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._notifier: Notifier | None = None

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def location(self) -> str:
        return str(self.db.path)

    @property
    def readonly(self) -> bool:
        return self.db.readonly

    def close(self) -> None:
        self.db.close()
        if self._notifier is not None:
            self._notifier.close()

    # -- wake-ups and change detection ---------------------------------------------------

    def wakeup(self) -> None:
        notifier = self._notifier
        if notifier is None:
            notifier = self._notifier = Notifier(self.db.path)
        notifier.notify()

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None] | None:
        listener = Listener(self.db.path, on_wake)
        return listener.stop if listener.start() else None

    def refresh(self) -> None:
        self.db.refresh()

    def attempt_log(self, owner: str) -> AttemptLog:
        return RunningFile(running_path(self.db.path, owner))

    # -- jobs: the state machine ---------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob], *, now: float, queue_size: int = 0,
                bounds: Mapping[str, QueueBound] | None = None) -> Enqueued:
        try:
            return self.db.write(lambda conn: _transitions.enqueue(
                conn, jobs, now, queue_size=queue_size, bounds=bounds))
        except sqlite3.IntegrityError as exc:
            raise DuplicateJob(f"{self.db.path}: {exc}; nothing was written", by="id") from None
        except QueueFull as exc:
            bound = (bounds or {}).get(exc.queue or "")
            full = exc.queue
            if full and (bound is None or bound.on_full == "reject"):
                refused = sum(1 for j in jobs if j.queue == full)
                self.db.write(lambda conn: count_backpressure(conn, full, rejected=refused))
            raise

    def claim(self, *, now: float, owner: str, lease_seconds: float, want: int,
              busy: bool = False, queues: Sequence[str] = (), acks: Sequence[Ack] = (),
              labels: Mapping[str, tuple[str, str]] | None = None,
              limits: FlowLimits | None = None) -> ClaimResult:
        def claim(conn: sqlite3.Connection) -> ClaimResult:
            if acks:
                _transitions.complete(conn, acks, labels)
            return _transitions.claim(conn, now=now, owner=owner, lease_seconds=lease_seconds,
                                     want=want, busy=busy, queues=queues, limits=limits)

        return self.db.write(claim)

    def complete(self, acks: Sequence[Ack],
                 labels: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.db.write(lambda conn: _transitions.complete(conn, acks, labels))

    def retry(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
              now: float, run_at: float | None, reason: str | None, data: bytes | None = None,
              results: Sequence[tuple[str, bytes]] = (), jobs: Sequence[NewJob] = (),
              acks: Sequence[Ack] = ()) -> None:
        def write(conn: sqlite3.Connection) -> None:
            if acks:
                _transitions.complete(conn, acks)
            _transitions.retry(conn, job_id, attempt, failure, worker=worker, now=now,
                               run_at=run_at, reason=reason, data=data, results=results,
                               jobs=jobs)

        self.db.write(write)

    def bury(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
             now: float, reason: str | None, results: Sequence[tuple[str, bytes]] = (),
             jobs: Sequence[NewJob] = (), acks: Sequence[Ack] = ()) -> None:
        def write(conn: sqlite3.Connection) -> None:
            if acks:
                _transitions.complete(conn, acks)
            _transitions.bury(conn, job_id, attempt, failure, worker=worker, now=now,
                              reason=reason, results=results, jobs=jobs)

        self.db.write(write)

    def cancel_attempt(self, job_id: str, *, now: float, reason: str | None,
                       results: Sequence[tuple[str, bytes]] = ()) -> None:
        def write(conn: sqlite3.Connection) -> None:
            _transitions.cancel_attempt(conn, job_id, now=now, reason=reason)
            _cancels.forget_cancel(conn, job_id)
            _transitions.write_follow_ups(conn, job_id, results, (), now)

        self.db.write(write)

    def hand_back(self, job_id: str, *, now: float, reason: str | None,
                  results: Sequence[tuple[str, bytes]] = ()) -> None:
        def write(conn: sqlite3.Connection) -> None:
            _transitions.hand_back(conn, job_id, now=now, reason=reason)
            _transitions.write_follow_ups(conn, job_id, results, (), now)

        self.db.write(write)

    def release(self, job_id: str, run_at: float) -> None:
        self.db.write(lambda conn: _transitions.release(conn, job_id, run_at))

    def unclaim(self, job_ids: Sequence[str]) -> None:
        self.db.write(lambda conn: _transitions.unclaim(conn, job_ids))

    def rearm(self, job: NewJob, *, now: float, queue_size: int = 0) -> bool:
        return self.db.write(lambda conn: _transitions.rearm(conn, job, now,
                                                            queue_size=queue_size))

    def cancel_waiting(self, *, now: float, reason: str, due: bool) -> int:
        return self.db.write(lambda conn: _transitions.cancel_waiting(conn, now=now,
                                                                     reason=reason, due=due))

    def set_progress(self, job_id: str, done: float, total: float | None,
                     message: str | None) -> None:
        self.db.write(lambda conn: _transitions.set_progress(conn, job_id, done, total, message))

    def has_future_jobs(self) -> bool:
        return bool(self.db.query(
            f"SELECT 1 FROM runner_job WHERE state IN {sql_in(FUTURE)} LIMIT 1"))

    def job_is_final(self, job_id: str) -> bool:
        rows = self.db.query("SELECT state FROM runner_job WHERE id=?", (job_id,))
        return not rows or rows[0][0] in FINAL

    # -- flow control: pause, cancel, backpressure ---------------------------------------

    def set_pause(self, kind: str, name: str, paused: bool, *, now: float,
                  by: str | None = None) -> bool:
        return _pauses.set_pause(self.db, kind, name, paused, now=now, by=by)

    def seed_pauses(self, kind: str, names: Sequence[str], *, now: float) -> None:
        return _pauses.seed_pauses(self.db, kind, names, now=now)

    def list_pauses(self) -> list[PauseRow]:
        return _pauses.list_pauses(self.db)

    def request_cancel(self, job_id: str, *, by: str, now: float) -> JobState | None:
        return _cancels.request_cancel(self.db, job_id, by=by, now=now)

    def cancel_requests(self, job_ids: Sequence[str]) -> dict[str, str]:
        return _cancels.cancel_requests(self.db, job_ids)

    def backpressure_totals(self) -> dict[str, tuple[int, int]]:
        return read_backpressure(self.db)

    # -- workers -------------------------------------------------------------------------

    def register(self, owner: str, *, concurrency: int, queues: tuple[str, ...],
                 now: float | None = None) -> None:
        return _workers.register(self.db, owner, concurrency=concurrency, queues=queues, now=now)

    def heartbeat(self, owner: str, job_ids: list[str], *, lease_seconds: float,
                  rss_bytes: int | None = None, cpu_percent: float | None = None,
                  processed: int | None = None, status: str | None = None,
                  running: int | None = None, now: float | None = None) -> None:
        return _workers.heartbeat(self.db, owner, job_ids, lease_seconds=lease_seconds,
                                  rss_bytes=rss_bytes, cpu_percent=cpu_percent,
                                  processed=processed, status=status, running=running, now=now)

    def mark_stopped(self, owner: str, now: float | None = None) -> None:
        return _workers.mark_stopped(self.db, owner, now)

    def recover_orphans(self, *, crash_limit: int, me: str | None = None,
                        now: float | None = None) -> Recovery:
        return _workers.recover_orphans(self.db, crash_limit=crash_limit, me=me, now=now)

    def prune_workers(self, *, older_than: float, now: float | None = None) -> int:
        return _workers.prune_workers(self.db, older_than=older_than, now=now)

    # -- logs ----------------------------------------------------------------------------

    def write_logs(self, rows: Sequence[LogTuple], *, trim_to: int = 0,
                   deadline: float = 5.0) -> None:
        return _logs.write_logs(self.db, rows, trim_to=trim_to, deadline=deadline)

    def read_logs(self, filters: LogFilter | None = None, *, after_id: int = 0,
                  limit: int = 200) -> list[LogRow]:
        return _logs.read_logs(self.db, filters, after_id=after_id, limit=limit)

    def tail_logs(self, *, after_id: int = 0, job_id: str | None = None, min_level: int = 0,
                  text: str | None = None, limit: int = 500) -> list[LogRow]:
        return _logs.tail_logs(self.db, after_id=after_id, job_id=job_id, min_level=min_level,
                               text=text, limit=limit)

    def job_log_bytes(self, job_id: str) -> int:
        return _logs.job_log_bytes(self.db, job_id)

    # -- schedules -----------------------------------------------------------------------

    def sync_schedules(self, items: Sequence[SyncItem], *, now: float,
                       orphan_others: bool = True) -> None:
        return _schedules.sync_schedules(self.db, items, now=now, orphan_others=orphan_others)

    def ensure_schedule(self, item: SyncItem, *, now: float) -> None:
        return _schedules.ensure_schedule(self.db, item, now=now)

    def due_schedules(self, now: float) -> list[tuple[str, float]]:
        return _schedules.due_schedules(self.db, now)

    def next_due(self) -> float | None:
        return _schedules.next_due(self.db)

    def data_version(self) -> int:
        return _schedules.data_version(self.db)

    def fire(self, plans: Sequence[FirePlan], *, clock: Callable[[], float],
             queue_size: int) -> list[FireResult]:
        return _schedules.fire(self.db, plans, clock=clock, queue_size=queue_size)

    def record_manual_run(self, name: str, job: NewJob, *, now: float, queue_size: int) -> None:
        return _schedules.record_manual_run(self.db, name, job, now=now, queue_size=queue_size)

    def set_paused(self, name: str, paused: bool, *, now: float,
                   next_fire_at: float | None = None) -> bool:
        return _schedules.set_paused(self.db, name, paused, now=now, next_fire_at=next_fire_at)

    def set_skip_next(self, name: str, skip: bool = True, *, now: float) -> bool:
        return _schedules.set_skip_next(self.db, name, skip, now=now)

    def list_schedules(self, name: str | None = None) -> list[ScheduleRow]:
        return _schedules.list_schedules(self.db, name)

    def get_schedule(self, name: str) -> ScheduleRow | None:
        return _schedules.get_schedule(self.db, name)

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[RunRow]:
        return _schedules.schedule_runs(self.db, name, limit=limit)

    def prune_runs(self, *, before: float) -> int:
        return _schedules.prune_runs(self.db, before=before)

    def count_schedules(self) -> int:
        return _schedules.count_schedules(self.db)

    # -- events --------------------------------------------------------------------------

    def insert_events(self, events: Sequence[NewEvent],
                      dispatch: Sequence[tuple[NewJob, Sequence[str]]], *, now: float,
                      dedupe_window: float, deadline: float) -> list[str]:
        return _events.insert_events(self.db, events, dispatch, now=now,
                                     dedupe_window=dedupe_window, deadline=deadline)

    def pending_events(self, ids: Sequence[str]) -> list[EventRow]:
        return _events.pending_events(self.db, ids)

    def due_pending_events(self, *, now: float, limit: int) -> list[EventRow]:
        return _events.due_pending_events(self.db, now=now, limit=limit)

    def fan_out(self, deliveries: Mapping[str, Sequence[NewJob]], *, settle: Sequence[str] = (),
                now: float | None = None) -> dict[str, int]:
        return _events.fan_out(self.db, deliveries, settle=settle, now=now)

    def add_deliveries(self, event_id: str, jobs: Sequence[NewJob], *,
                       now: float | None = None) -> bool:
        return _events.add_deliveries(self.db, event_id, jobs, now=now)

    def get_event(self, event_id: str) -> EventRow:
        return _events.get_event(self.db, event_id)

    def event_of_job(self, job_id: str) -> EventRow | None:
        return _events.event_of_job(self.db, job_id)

    def list_events(self, *, pattern: str | None = None, since: float | None = None,
                    status: str | None = None, limit: int = 100) -> list[EventRow]:
        return _events.list_events(self.db, pattern=pattern, since=since, status=status,
                                   limit=limit)

    def handler_outcomes(self, event_ids: Sequence[str]) -> dict[str, list[HandlerOutcome]]:
        return _events.handler_outcomes(self.db, event_ids)

    def prune_events(self, older_than_days: float, *, now: float | None = None, batch: int = 1000,
                     dry_run: bool = False) -> int:
        return _events.prune_events(self.db, older_than_days, now=now, batch=batch,
                                    dry_run=dry_run)

    def count_events(self, status: str | None = None) -> int:
        return _events.count_events(self.db, status)

    def count_unhandled(self) -> int:
        return _events.count_unhandled(self.db)

    def unhandled_events(self, *, limit: int = 200) -> list[EventRow]:
        return _events.unhandled_events(self.db, limit=limit)

    # -- queries -------------------------------------------------------------------------

    def list_jobs(self, filters: JobFilter | None = None, *, limit: int = 100,
                  offset: int = 0) -> list[JobRow]:
        return _queries.list_jobs(self.db, filters, limit=limit, offset=offset)

    def count_jobs(self, filters: JobFilter | None = None) -> int:
        return _queries.count_jobs(self.db, filters)

    def job_ids(self, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
        return _queries.job_ids(self.db, filters, limit=limit)

    def get_job(self, job_id: str) -> JobRow:
        return _queries.get_job(self.db, job_id)

    def job_errors(self, job_id: str) -> list[AttemptError]:
        return _queries.job_errors(self.db, job_id)

    def counts_by_state(self) -> dict[str, int]:
        return _queries.counts_by_state(self.db)

    def queue_depths(self, now: float | None = None) -> list[QueueDepth]:
        return _queries.queue_depths(self.db, now)

    def list_workers(self, *, include_stopped: bool = False) -> list[WorkerRow]:
        return _queries.list_workers(self.db, include_stopped=include_stopped)

    def stored_result(self, job_id: str) -> bytes | None:
        return _queries.stored_result(self.db, job_id)

    # -- job_control ---------------------------------------------------------------------

    def retry_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        return _job_control.retry_jobs(self.db, job_ids, now=now)

    def cancel_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        return _job_control.cancel_jobs(self.db, job_ids, now=now)

    def discard_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        return _job_control.discard_jobs(self.db, job_ids, now=now)

    def redispatch_event(self, event_id: str, dispatch_job: str, *, now: float) -> None:
        return _job_control.redispatch_event(self.db, event_id, dispatch_job, now=now)

    def count_for_bulk(self, filters: JobFilter, states: Sequence[str]) -> tuple[int, int]:
        return _job_control.count_for_bulk(self.db, filters, states)

    def run_bulk(self, verb: str, filters: JobFilter, states: Sequence[str], *, up_to_rowid: int,
                 now: float, chunk: int = 500) -> int:
        return _job_control.run_bulk(self.db, verb, filters, states, up_to_rowid=up_to_rowid,
                                     now=now, chunk=chunk)

    # -- maintenance ---------------------------------------------------------------------

    def prune_retention(self, section: RetentionSection, *, now: float | None = None,
                        dry_run: bool = False) -> PruneReport:
        return _maintenance.prune(self.db, section, now=now, dry_run=dry_run)

    # -- stats ---------------------------------------------------------------------------

    def count_in_state(self, state: JobState) -> int:
        return _stats.count_in_state(self.db, state)

    def completed_per_minute(self, start: float) -> list[tuple[int, int]]:
        return _stats.completed_per_minute(self.db, start)

    def failed_per_minute(self, start: float) -> list[tuple[int, int]]:
        return _stats.failed_per_minute(self.db, start)

    def finished_per_second(self, since: float,
                            until: float | None = None) -> tuple[dict[int, int], dict[int, int]]:
        return _stats.finished_per_second(self.db, since, until)

    def queue_oldest(self, now: float) -> list[tuple[str, float | None]]:
        return _stats.queue_oldest(self.db, now)

    def waiting_in_queue(self, queue: str) -> int:
        return _stats.waiting_in_queue(self.db, queue)

    def running_per_queue(self) -> dict[str, int]:
        return _stats.running_per_queue(self.db)

    def running_jobs(self) -> list[tuple[str | None, str, str, float | None]]:
        return _stats.running_jobs(self.db)

    def unfinished_by_queue(self) -> list[tuple[str, str, int]]:
        return _stats.unfinished_by_queue(self.db)

    def counts_by_queue_and_state(self) -> list[tuple[str, str, int]]:
        return _stats.counts_by_queue_and_state(self.db)

    def job_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                 offset: int = 0) -> list[JobRow]:
        return _stats.job_page(self.db, filters, limit=limit, offset=offset)

    def count_jobs_capped(self, filters: JobFilter | None = None, *,
                          cap: int = 10_000) -> tuple[int, bool]:
        return _stats.count_jobs_capped(self.db, filters, cap=cap)

    def failure_rows(self, *, limit: int = 200) -> list[FailureRow]:
        return _stats.failure_rows(self.db, limit=limit)

    def failure_group_ids(self, error_type: str | None, message: str | None, *,
                          limit: int = 100_000) -> list[str]:
        return _stats.failure_group_ids(self.db, error_type, message, limit=limit)

    def failure_signature(self) -> tuple[int, int]:
        return _stats.failure_signature(self.db)

    def completions_since(self, since: float) -> list[tuple[str, str, float | None, float]]:
        return _stats.completions_since(self.db, since)

    def failed_attempts_since(self, since: float) -> list[tuple[str, str, float, int]]:
        return _stats.failed_attempts_since(self.db, since)

    def dead_by_task(self, since: float) -> list[tuple[str, str, int | None, int]]:
        return _stats.dead_by_task(self.db, since)

    def active_schedule_fires(self) -> list[tuple[str, float | None]]:
        return _stats.active_schedule_fires(self.db)

    def charge_stuck(self, job_id: str, attempt: int, owner: str, message: str, *,
                     crash_limit: int, now: float | None = None) -> str | None:
        return _workers.charge_stuck(self.db, job_id, attempt, owner, message,
                                     crash_limit=crash_limit, now=now)

    # -- the dashboard's panels ----------------------------------------------------------

    def summary(self, now: float | None = None,
                rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None, *,
                done_last_minute: int | None = None, stale_after: float = 15.0) -> Summary:
        return _panels.summary(self.db, now, rates, done_last_minute=done_last_minute,
                               stale_after=stale_after)

    def live_worker_ids(self, now: float, stale_after: float) -> frozenset[str]:
        return _panels.live_worker_ids(self.db, now, stale_after)

    def stalled_count(self, now: float, stale_after: float) -> int:
        return _panels.stalled_count(self.db, now, stale_after)

    def throughput(self, now: float | None = None, *,
                   minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return _panels.throughput(self.db, now, minutes=minutes)

    def queue_loads(self, now: float | None = None) -> list[QueueLoad]:
        return _panels.queue_loads(self.db, now)

    def recent_run_times(self, now: float | None = None, *, sample: int = RECENT_SAMPLE
                         ) -> tuple[RunTimes, dict[str, RunTimes]]:
        return _panels.recent_run_times(self.db, now, sample=sample)

    def worker_loads(self, *, include_stopped: bool = False) -> list[WorkerLoad]:
        return _panels.worker_loads(self.db, include_stopped=include_stopped)

    def keyset_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                    after: PageKey | None = None, oldest_first: bool = False,
                    sort: str = "newest", now: float | None = None) -> JobPage:
        return _panels.job_page(self.db, filters, limit=limit, after=after,
                                oldest_first=oldest_first, sort=sort, now=now)

    def page_key_at(self, at: float, filters: JobFilter | None = None, *,
                    oldest_first: bool = False) -> PageKey:
        return _panels.page_key_at(self.db, at, filters, oldest_first=oldest_first)

    # -- the metrics scrape --------------------------------------------------------------

    def read_snapshot(self, *, now: float | None = None,
                      heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
        return _scrape.read_database(self.db, now=now, heartbeat_limit=heartbeat_limit)

    def waiting_queues(self) -> list[str]:
        return _scrape.waiting_queues(self.db)

    # -- huey's key/value store and queue introspection ----------------------------------

    def kv_put(self, key: str, value: bytes) -> None:
        _kv.put(self.db, key, value)

    def kv_peek(self, key: str, *, now: float) -> bytes | None:
        return _kv.peek(self.db, key, now)

    def kv_peek_many(self, keys: Sequence[str], *, now: float) -> dict[str, bytes]:
        return _kv.peek_many(self.db, keys, now)

    def kv_pop(self, key: str, *, now: float) -> bytes | None:
        return _kv.pop(self.db, key, now)

    def kv_delete(self, key: str, *, now: float) -> bool:
        return _kv.delete(self.db, key, now)

    def kv_put_if_empty(self, key: str, value: bytes, *, ttl: float | None,
                        now: float) -> bool:
        return _kv.put_if_empty(self.db, key, value, ttl, now)

    def kv_items(self) -> dict[str, bytes]:
        return _kv.items(self.db)

    def kv_count(self) -> int:
        return _kv.count(self.db)

    def kv_flush(self) -> None:
        _kv.flush(self.db)

    def counter_incr(self, key: str, amount: int = 1) -> int:
        return _kv.incr(self.db, key, amount)

    def counter_delete(self, key: str) -> None:
        _kv.delete_counter(self.db, key)

    def counter_flush(self) -> None:
        _kv.flush_counters(self.db)

    def waiting_size(self, *, now: float, due: bool) -> int:
        return _queries.waiting_size(self.db, now=now, due=due)

    def waiting_payloads(self, *, now: float, due: bool, limit: int | None) -> list[bytes]:
        return _queries.waiting_payloads(self.db, now=now, due=due, limit=limit)

    # -- named leases --------------------------------------------------------------------

    def take_lease(self, name: str, owner: str, ttl: float, *,
                   now: float | None = None) -> bool:
        return _leases.take_lease(self.db, name, owner, ttl, now=now)

    def release_lease(self, name: str, owner: str) -> None:
        _leases.release_lease(self.db, name, owner)

    # -- upkeep --------------------------------------------------------------------------

    def enable_space_reclaim(self, *, me: str | None = None) -> str | None:
        return _maintenance.enable_space_reclaim(self.db, me=me)

    def space_reclaim_note(self) -> str | None:
        if _maintenance.auto_vacuum_mode(self.db) == _maintenance.INCREMENTAL:
            return None
        return _maintenance.AUTO_VACUUM_OFF

    def vacuum(self, *, force: bool = False) -> str:
        return _maintenance.vacuum_file(self.db, force=force)

    def data_dir(self) -> Path | None:
        return self.db.path.parent

    def probe_write(self, size: int, *, deadline: float, commit: bool = False) -> None:
        _integrity.probe_write(self.db, size, deadline=deadline, commit=commit)

    def integrity_problem(self, *, full_check_below: int) -> str | None:
        return _integrity.integrity_problem(self.db, full_check_below=full_check_below)

    def verify(self) -> None:
        _integrity.verify(self.db)

    # -- integrity -----------------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        return _integrity.has_table(self.db, name)

    def quick_check(self) -> str:
        return _integrity.quick_check(self.db)


_stores: dict[int, SqliteStore] = {}
_stores_lock = threading.Lock()


def sqlite_store(db: Database) -> SqliteStore:
    """The store of an open database (one per :class:`Database` object)."""
    store = _stores.get(id(db))
    if store is None or store.db is not db:
        with _stores_lock:
            store = _stores[id(db)] = SqliteStore(db)
    return store


def open_sqlite(request: StoreRequest) -> SqliteStore:
    """The store of a SQLite file; unless read-only, created and migrated on first open.

    The per-thread connection of :class:`Database` is this backend's pool (see
    :mod:`runner.store.sqlite.db` for the measurement): SQLite serialises writers
    anyway, and a connection never crosses threads.
    """
    if request.shared:
        return SqliteStore(Database(request.database, request.options,
                                    readonly=request.readonly, shared=True))
    if request.readonly:
        return sqlite_store(Database(request.database, request.options, readonly=True))
    db = open_database(request.database, request.options, file_mode=request.file_mode)
    prepare_database(db)
    return sqlite_store(db)


BACKEND = Backend("sqlite", open_sqlite, errors=(sqlite3.Error, peewee.DatabaseError),
                  bugs=(sqlite3.ProgrammingError, sqlite3.InterfaceError))
