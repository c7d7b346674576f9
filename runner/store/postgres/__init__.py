"""The PostgreSQL backend of the storage seam: :class:`PostgresStore` over one database.

Any number of ``run.py`` processes on any number of hosts share one database:
claims take rows with ``FOR UPDATE SKIP LOCKED`` in one statement per batch,
enqueues ``NOTIFY`` the database's channel so idle workers wake at once,
schedule slots fire once by compare-and-set, events fan out once by
compare-and-set. The statements live in the modules of this package, one per
part (transitions, schedules, events, workers, logs, reads, upkeep); each
method here is one transaction or one read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psycopg
from psycopg import errors as pg_errors

from runner.errors import DatabaseCorrupt, DuplicateJob, QueueFull
from runner.flow import FlowLimits
from runner.sections import RetentionSection
from runner.store.backend import AttemptLog, Backend, StoreRequest
from runner.store.event_rows import EventRow, EventStatus, HandlerOutcome, NewEvent
from runner.store.job_rows import Ack, Enqueued, FailureInfo, NewJob, QueueBound
from runner.store.postgres import attempts as _attempts
from runner.store.postgres import control as _control
from runner.store.postgres import counting as _counting
from runner.store.postgres import events as _events
from runner.store.postgres import kv as _kv
from runner.store.postgres import logs as _logs
from runner.store.postgres import panels as _panels
from runner.store.postgres import reads as _reads
from runner.store.postgres import schedules as _schedules
from runner.store.postgres import transitions as _transitions
from runner.store.postgres import upkeep as _upkeep
from runner.store.postgres import workers as _workers
from runner.store.postgres.connection import PgDatabase, is_postgres_url, open_pg_database
from runner.store.postgres.room import PgRoom
from runner.store.postgres.schema import prepare
from runner.store.postgres.wakeup import Listener, notify_soon
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
from runner.store.states import FINAL, WAITING, JobState
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

logger = logging.getLogger(__name__)

#: Seconds after an enqueue (which has a wake-up sent) in which another is moot.
_NOTIFIED_RECENTLY = 0.05

__all__ = ["BACKEND", "PostgresStore", "PgDatabase", "is_postgres_url", "open_postgres_store"]


class PostgresStore(PgRoom):
    """:class:`runner.store.backend.Store` on a PostgreSQL database (see the module docstring)."""

    def __init__(self, db: PgDatabase, *, readonly: bool = False) -> None:
        self.db = db
        self._readonly = readonly
        self._notified = 0.0

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def location(self) -> str:
        return self.db.display

    @property
    def readonly(self) -> bool:
        return self._readonly

    def close(self) -> None:
        self.db.close()

    # -- wake-ups and change detection ---------------------------------------------------

    def wakeup(self) -> None:
        if time.monotonic() - self._notified < _NOTIFIED_RECENTLY:
            return  # the enqueue just before sent NOTIFY in its own transaction
        notify_soon(self.db)

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None] | None:
        listener = Listener(self.db, on_wake)
        return listener.stop if listener.start() else None

    def refresh(self) -> None:
        pass  # each read sees the latest commits (READ COMMITTED)

    def attempt_log(self, owner: str) -> AttemptLog:
        return _attempts.AttemptLog(self.db, owner)

    # -- jobs: the state machine ---------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob], *, now: float, queue_size: int = 0,
                bounds: Mapping[str, QueueBound] | None = None) -> Enqueued:
        sizes, drops = _queue_sizes(jobs, queue_size, bounds)
        keyed = any(j.unique_key is not None for j in jobs)
        try:
            # Unbounded and unkeyed, the enqueue is one statement: it commits by itself.
            result = self.db.write(
                lambda conn: _transitions.enqueue_new(conn, jobs, now, sizes=sizes,
                                                      drops=drops),
                single=not sizes and not keyed and not drops)
            notify_soon(self.db)  # after the commit, by a thread (see wakeup.Notifier)
            self._notified = time.monotonic()
            return result
        except pg_errors.UniqueViolation as exc:
            by = "id" if exc.diag.constraint_name == "runner_job_pkey" else "unique_key"
            raise DuplicateJob(f"{self.db.display}: {exc.diag.message_detail or exc}; "
                               "nothing was written", by=by) from None
        except QueueFull as exc:
            full = exc.queue
            bound = (bounds or {}).get(full or "")
            if full and (bound is None or bound.on_full == "reject"):
                refused = sum(1 for j in jobs if j.queue == full)
                self.db.write(lambda conn: _counting.count_backpressure(conn, full,
                                                                       rejected=refused))
            raise

    def claim(self, *, now: float, owner: str, lease_seconds: float, want: int,
              busy: bool = False, queues: Sequence[str] = (), acks: Sequence[Ack] = (),
              labels: Mapping[str, tuple[str, str]] | None = None,
              limits: FlowLimits | None = None) -> ClaimResult:
        channel = self.db.channel
        epoch = self.db.revocation_epoch()
        if _transitions.claims_at_once(acks, limits):
            done = self.db.write(lambda conn: _transitions.claim_at_once(
                conn, now=now, owner=owner, lease_seconds=lease_seconds, want=want,
                queues=queues, acks=acks, limits=limits), single=True)
            if done is not None:
                self.db.claim_found_revocations(epoch, done.revocations)
                return done
            acks = ()  # written; the full claim below decides what to take

        def claim(conn) -> ClaimResult:  # noqa: ANN001 - a psycopg connection
            _transitions.complete(conn, acks, channel)
            return _transitions.claim(conn, now=now, owner=owner, lease_seconds=lease_seconds,
                                      want=want, busy=busy, queues=queues, limits=limits)

        return self.db.write(claim)

    def complete(self, acks: Sequence[Ack],
                 labels: Mapping[str, tuple[str, str]] | None = None) -> None:
        channel = self.db.channel
        self.db.write(lambda conn: _transitions.complete(conn, acks, channel))

    def retry(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
              now: float, run_at: float | None, reason: str | None, data: bytes | None = None,
              results: Sequence[tuple[str, bytes]] = (), jobs: Sequence[NewJob] = (),
              acks: Sequence[Ack] = ()) -> None:
        channel = self.db.channel

        def write(conn) -> None:  # noqa: ANN001 - a psycopg connection
            _transitions.complete(conn, acks, channel)
            _transitions.fail(conn, job_id, attempt, failure, JobState.RETRYING, worker=worker,
                              now=now, run_at=run_at, reason=reason, data=data)
            _transitions.write_follow_ups(conn, job_id, results, jobs, now, channel)

        self.db.write(write)

    def bury(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
             now: float, reason: str | None, results: Sequence[tuple[str, bytes]] = (),
             jobs: Sequence[NewJob] = (), acks: Sequence[Ack] = ()) -> None:
        channel = self.db.channel

        def write(conn) -> None:  # noqa: ANN001 - a psycopg connection
            _transitions.complete(conn, acks, channel)
            _transitions.fail(conn, job_id, attempt, failure, JobState.DEAD, worker=worker,
                              now=now, run_at=None, reason=reason, data=None)
            _transitions.write_follow_ups(conn, job_id, results, jobs, now, channel)

        self.db.write(write)

    def cancel_attempt(self, job_id: str, *, now: float, reason: str | None,
                       results: Sequence[tuple[str, bytes]] = ()) -> None:
        def write(conn) -> None:  # noqa: ANN001 - a psycopg connection
            _transitions.cancel_attempt(conn, job_id, now=now, reason=reason)
            _control.forget_cancel(conn, job_id)
            _transitions.write_follow_ups(conn, job_id, results, (), now)

        self.db.write(write)

    def hand_back(self, job_id: str, *, now: float, reason: str | None,
                  results: Sequence[tuple[str, bytes]] = ()) -> None:
        channel = self.db.channel

        def write(conn) -> None:  # noqa: ANN001 - a psycopg connection
            _transitions.hand_back(conn, job_id, now=now, reason=reason)
            _transitions.write_follow_ups(conn, job_id, results, (), now)
            _transitions.notify(conn, channel)

        self.db.write(write)

    def release(self, job_id: str, run_at: float) -> None:
        self.db.write(lambda conn: _transitions.release(conn, job_id, run_at))

    def unclaim(self, job_ids: Sequence[str]) -> None:
        channel = self.db.channel

        def write(conn) -> None:  # noqa: ANN001 - a psycopg connection
            _transitions.unclaim(conn, job_ids)
            _transitions.notify(conn, channel)

        self.db.write(write)

    def rearm(self, job: NewJob, *, now: float, queue_size: int = 0) -> bool:
        channel = self.db.channel

        def write(conn) -> bool:  # noqa: ANN001 - a psycopg connection
            if not _transitions.rearm(conn, job, now, queue_size=queue_size):
                return False
            _transitions.notify(conn, channel)
            return True

        return self.db.write(write)

    def cancel_waiting(self, *, now: float, reason: str, due: bool) -> int:
        return self.db.write(lambda conn: _transitions.cancel_waiting(conn, now=now,
                                                                      reason=reason, due=due))

    def set_progress(self, job_id: str, done: float, total: float | None,
                     message: str | None) -> None:
        self.db.write(lambda conn: _transitions.set_progress(conn, job_id, done, total, message))

    def has_future_jobs(self) -> bool:
        return _reads.has_future_jobs(self.db)

    def job_is_final(self, job_id: str) -> bool:
        state = _reads.job_state(self.db, job_id)
        return state is None or state in FINAL

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
        rows = _schedules.list_schedules(self.db, name)
        return rows[0] if rows else None

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[RunRow]:
        return _schedules.schedule_runs(self.db, name, limit=limit)

    def prune_runs(self, *, before: float) -> int:
        return _upkeep.prune_runs(self.db, before=before)

    def count_schedules(self) -> int:
        return self.db.query("SELECT count(*) FROM runner_schedule")[0][0]

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
        return _events.count_events(self.db, EventStatus.UNHANDLED)

    def unhandled_events(self, *, limit: int = 200) -> list[EventRow]:
        return _events.unhandled_events(self.db, limit=limit)

    # -- queries -------------------------------------------------------------------------

    def list_jobs(self, filters: JobFilter | None = None, *, limit: int = 100,
                  offset: int = 0) -> list[JobRow]:
        return _reads.list_jobs(self.db, filters, limit=limit, offset=offset)

    def count_jobs(self, filters: JobFilter | None = None) -> int:
        return _reads.count_jobs(self.db, filters)

    def job_ids(self, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
        return _reads.job_ids(self.db, filters, limit=limit)

    def get_job(self, job_id: str) -> JobRow:
        return _reads.get_job(self.db, job_id)

    def job_errors(self, job_id: str) -> list[AttemptError]:
        return _reads.job_errors(self.db, job_id)

    def counts_by_state(self) -> dict[str, int]:
        return _reads.counts_by_state(self.db)

    def queue_depths(self, now: float | None = None) -> list[QueueDepth]:
        return _reads.queue_depths(self.db, now)

    def list_workers(self, *, include_stopped: bool = False) -> list[WorkerRow]:
        return _reads.list_workers(self.db, include_stopped=include_stopped)

    def stored_result(self, job_id: str) -> bytes | None:
        return _reads.stored_result(self.db, job_id)

    # -- job_control ---------------------------------------------------------------------

    def retry_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        channel = self.db.channel

        def retry(conn, chunk: Sequence[str]) -> int:  # noqa: ANN001 - a psycopg connection
            _transitions.notify(conn, channel)
            return _transitions.retry_now(conn, chunk, now=now)

        return _upkeep.each_chunk(self.db, job_ids, retry)

    def cancel_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        return _upkeep.each_chunk(self.db, job_ids, lambda conn, chunk: _transitions.cancel(
            conn, chunk, now=now))

    def discard_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        return _upkeep.each_chunk(self.db, job_ids, lambda conn, chunk: _transitions.cancel(
            conn, chunk, now=now, discard=True))

    def redispatch_event(self, event_id: str, dispatch_job: str, *, now: float) -> None:
        return _upkeep.redispatch_event(self.db, event_id, dispatch_job, now=now)

    def count_for_bulk(self, filters: JobFilter, states: Sequence[str]) -> tuple[int, int]:
        return _upkeep.count_for_bulk(self.db, filters, states)

    def run_bulk(self, verb: str, filters: JobFilter, states: Sequence[str], *, up_to_rowid: int,
                 now: float, chunk: int = 500) -> int:
        return _upkeep.run_bulk(self.db, verb, filters, states, up_to_rowid=up_to_rowid,
                                     now=now, chunk=chunk)

    # -- maintenance ---------------------------------------------------------------------

    def prune_retention(self, section: RetentionSection, *, now: float | None = None,
                        dry_run: bool = False) -> PruneReport:
        return _upkeep.prune(self.db, section, now=now, dry_run=dry_run)

    # -- stats ---------------------------------------------------------------------------

    def count_in_state(self, state: JobState) -> int:
        return _reads.count_in_state(self.db, state)

    def completed_per_minute(self, start: float) -> list[tuple[int, int]]:
        return _reads.completed_per_minute(self.db, start)

    def failed_per_minute(self, start: float) -> list[tuple[int, int]]:
        return _reads.failed_per_minute(self.db, start)

    def finished_per_second(self, since: float,
                            until: float | None = None) -> tuple[dict[int, int], dict[int, int]]:
        return _reads.finished_per_second(self.db, since, until)

    def queue_oldest(self, now: float) -> list[tuple[str, float | None]]:
        return _reads.queue_oldest(self.db, now)

    def waiting_in_queue(self, queue: str) -> int:
        return _reads.waiting_in_queue(self.db, queue)

    def running_per_queue(self) -> dict[str, int]:
        return _reads.running_per_queue(self.db)

    def running_jobs(self) -> list[tuple[str | None, str, str, float | None]]:
        return _reads.running_jobs(self.db)

    def counts_by_queue_and_state(self) -> list[tuple[str, str, int]]:
        return _reads.counts_by_queue_and_state(self.db)

    def job_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                 offset: int = 0) -> list[JobRow]:
        return _reads.job_page(self.db, filters, limit=limit, offset=offset)

    def count_jobs_capped(self, filters: JobFilter | None = None, *,
                          cap: int = 10_000) -> tuple[int, bool]:
        return _reads.count_jobs_capped(self.db, filters, cap=cap)

    def failure_rows(self, *, limit: int = 200) -> list[FailureRow]:
        return _reads.failure_rows(self.db, limit=limit)

    def failure_group_ids(self, error_type: str | None, message: str | None, *,
                          limit: int = 100_000) -> list[str]:
        return _reads.failure_group_ids(self.db, error_type, message, limit=limit)

    def failure_signature(self) -> tuple[int, int]:
        return _reads.failure_signature(self.db)

    def completions_since(self, since: float) -> list[tuple[str, str, float | None, float]]:
        return _reads.completions_since(self.db, since)

    def failed_attempts_since(self, since: float) -> list[tuple[str, str, float, int]]:
        return _reads.failed_attempts_since(self.db, since)

    def dead_by_task(self, since: float) -> list[tuple[str, str, int | None, int]]:
        return _reads.dead_by_task(self.db, since)

    def active_schedule_fires(self) -> list[tuple[str, float | None]]:
        return _reads.active_schedule_fires(self.db)

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
        return _panels.read_snapshot(self.db, now=now, heartbeat_limit=heartbeat_limit)

    def waiting_queues(self) -> list[str]:
        return _panels.waiting_queues(self.db)

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
        return _kv.waiting_size(self.db, now=now, due=due)

    def waiting_payloads(self, *, now: float, due: bool, limit: int | None) -> list[bytes]:
        return _kv.waiting_payloads(self.db, now=now, due=due, limit=limit)

    # -- named leases --------------------------------------------------------------------

    def take_lease(self, name: str, owner: str, ttl: float, *,
                   now: float | None = None) -> bool:
        return _kv.take_lease(self.db, name, owner, ttl, now=now)

    def release_lease(self, name: str, owner: str) -> None:
        _kv.release_lease(self.db, name, owner)

    # -- upkeep: the server's own (autovacuum, checksums, its disk) ----------------------

    def enable_space_reclaim(self, *, me: str | None = None) -> str | None:
        return None  # autovacuum gives space back

    def space_reclaim_note(self) -> str | None:
        return None

    def vacuum(self, *, force: bool = False) -> str:
        return (f"{self.db.display}: PostgreSQL's autovacuum reclaims space; nothing to do "
                "(VACUUM FULL by hand rewrites a table if ever needed)")

    def data_dir(self) -> Path | None:
        return None  # the data is not on this host

    def probe_write(self, size: int, *, deadline: float, commit: bool = False) -> None:
        # The server's disk is its own to watch; a failed write says DiskFull by itself.
        return None

    def integrity_problem(self, *, full_check_below: int) -> str | None:
        result = self.quick_check()
        return None if result == "ok" else result

    def verify(self) -> None:
        if not self.has_table("runner_job"):
            raise DatabaseCorrupt(f"{self.db.display}: holds no jobs tables; point "
                                  "[runner] database / RUNNER_DATABASE at a jobs database")

    # -- flow control: pause, cancel, backpressure ---------------------------------------

    def set_pause(self, kind: str, name: str, paused: bool, *, now: float,
                  by: str | None = None) -> bool:
        channel = self.db.channel

        def write(conn) -> bool:  # noqa: ANN001 - a psycopg connection
            changed = _control.set_pause(conn, kind, name, paused, now=now, by=by)
            if changed and not paused:
                _transitions.notify(conn, channel)  # idle workers take the resumed jobs
            return changed

        return self.db.write(write)

    def seed_pauses(self, kind: str, names: Sequence[str], *, now: float) -> None:
        if names:
            self.db.write(lambda conn: _control.seed_pauses(conn, kind, names, now=now))

    def list_pauses(self) -> list[PauseRow]:
        return _control.list_pauses(self.db)

    def request_cancel(self, job_id: str, *, by: str, now: float) -> JobState | None:
        return self.db.write(lambda conn: _control.request_cancel(conn, job_id, by=by,
                                                                  now=now))

    def cancel_requests(self, job_ids: Sequence[str]) -> dict[str, str]:
        return _control.cancel_requests(self.db, job_ids)

    def backpressure_totals(self) -> dict[str, tuple[int, int]]:
        return _control.backpressure_totals(self.db)

    def unfinished_by_queue(self) -> list[tuple[str, str, int]]:
        return self.db.query(
            "SELECT queue, state, count(*) FROM runner_job WHERE state = ANY(%s) "
            "GROUP BY queue, state ORDER BY queue, state",
            ([s.value for s in (*WAITING, JobState.EXECUTING, JobState.DEAD)],))

    # -- integrity -----------------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        return self.db.query("SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]

    def quick_check(self) -> str:
        # PostgreSQL checks its own pages (checksums, WAL); a read that answers is the check.
        self.db.query("SELECT count(*) FROM runner_meta")
        return "ok"


def _queue_sizes(jobs: Sequence[NewJob], queue_size: int,
                 bounds: Mapping[str, QueueBound] | None
                 ) -> tuple[dict[str, int], dict[str, QueueBound]]:
    """The waiting-job bound of each queue of ``jobs`` that refuses when full, and the
    bound of each that drops its oldest jobs instead (queues without one left out)."""
    sizes: dict[str, int] = {}
    drops: dict[str, QueueBound] = {}
    for queue in {j.queue for j in jobs}:
        bound = (bounds or {}).get(queue)
        size = bound.max_size if bound is not None else queue_size
        if not size:
            continue
        if bound is not None and bound.on_full == "drop_oldest":
            drops[queue] = bound
        else:
            sizes[queue] = size
    return sizes, drops


def open_postgres_store(url: str, *, pool_size: int = 4,
                        readonly: bool = False) -> PostgresStore:
    """The store of a database URL: connected, its schema created or migrated (once per process).

    Raises:
        DatabaseUnavailable: the server cannot be reached.
        SchemaTooNew: the database was written by a newer version; nothing changed.
    """
    db = open_pg_database(url, pool_size=pool_size)
    if not readonly:
        prepare(db)
    return PostgresStore(db, readonly=readonly)


def open_postgres(request: StoreRequest) -> PostgresStore:
    """The store of a ``postgresql://`` URL; unless read-only, its schema created or
    migrated (once per process, one process at a time)."""
    return open_postgres_store(request.database, pool_size=request.connections or 4,
                               readonly=request.readonly)


BACKEND = Backend("postgres", open_postgres, errors=(psycopg.Error,),
                  bugs=(psycopg.ProgrammingError,))
