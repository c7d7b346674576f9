"""Retention and writes by hand on PostgreSQL: prune, retry now, cancel, discard, bulk.

The same rules as :mod:`runner.store.maintenance` and :mod:`runner.store.job_control`.
Deletes go in batches of ``batch_size`` rows, one short transaction each;
PostgreSQL's autovacuum reclaims the space, so there is no vacuum or WAL step.
Hand actions check the state they expect inside their transaction, so acting
on a database that live workers share is safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

import psycopg

from runner.service_sections import RetentionSection
from runner.store.batches import (
    bulk_condition,
    cancel_reason,
    check_redispatch,
    delete_in_batches,
    group_totals,
    prune_jobs_in_batches,
    walk_bulk,
)
from runner.store.postgres import flow_control as control
from runner.store.postgres import transitions
from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.event_store import prune_events
from runner.store.postgres.idle_queues import forget_idle_queues
from runner.store.postgres.job_queries import where as job_where
from runner.store.rows import JobFilter, PruneReport
from runner.store.states import FAILED_SQL, WorkerState, sql_in, sql_is

_CHUNK = 500
DAY = 86400.0
#: Worker rows retention forgets: not running, silent since the cut.
_GONE_WORKERS = f"state != {sql_is(WorkerState.RUNNING)} AND heartbeat_at < %s"


def prune(db: PgDatabase, section: RetentionSection, *, now: float | None = None,
          dry_run: bool = False, keep_queues: Collection[str] = ()) -> PruneReport:
    """Delete what retention says is old, and forget idle queues but ``keep_queues``
    (:mod:`runner.store.postgres.idle_queues`); with ``dry_run`` only count them."""
    at = time.time() if now is None else now
    report = PruneReport()
    old = transitions.Prunable(at - section.completed_days * DAY, at - section.dead_days * DAY)
    where, params = old.where()
    log_cut = at - section.logs_days * DAY
    workers_cut = at - section.workers_days * DAY
    if dry_run:
        report.deleted["jobs"] = db.query(f"SELECT count(*) FROM runner_job WHERE {where}",
                                          params)[0][0]
        report.deleted["logs"] = db.query(
            f"SELECT count(*) FROM runner_log WHERE created_at < %s OR job_id IN "
            f"(SELECT id FROM runner_job WHERE {where})", (log_cut, *params))[0][0]
        report.deleted["events"] = prune_events(db, section.events_days, now=at, dry_run=True)
        report.deleted["workers"] = db.query(
            f"SELECT count(*) FROM runner_worker WHERE {_GONE_WORKERS}", (workers_cut,))[0][0]
        report.forgotten_queues = forget_idle_queues(db, keep_queues, batch=section.batch_size,
                                                     dry_run=True)
        return report
    size = section.batch_size
    jobs, job_logs = prune_jobs_in_batches(
        lambda: db.write(lambda c: transitions.prune(c, old, limit=size)), size)
    report.deleted["jobs"] = jobs
    report.deleted["logs"] = job_logs + delete_in_batches(lambda: db.write(lambda c: c.execute(
        "DELETE FROM runner_log WHERE id IN (SELECT id FROM runner_log WHERE created_at < %s "
        "LIMIT %s)", (log_cut, size)).rowcount), size)
    report.deleted["events"] = prune_events(db, section.events_days, now=at, batch=size)
    report.deleted["workers"] = db.write(lambda c: c.execute(
        f"DELETE FROM runner_worker WHERE {_GONE_WORKERS}", (workers_cut,)).rowcount)
    db.write(control.forget_settled_cancels)
    report.forgotten_queues = forget_idle_queues(db, keep_queues, batch=section.batch_size)
    return report


def prune_runs(db: PgDatabase, *, before: float) -> int:
    """Delete schedule slot records fired before ``before``; returns how many."""
    return db.write(lambda c: c.execute(
        "DELETE FROM runner_schedule_run WHERE fired_at < %s", (before,)).rowcount)


# -- by hand -----------------------------------------------------------------------------


def each_chunk(db: PgDatabase, job_ids: Sequence[str],
               update: Callable[[psycopg.Connection, Sequence[str]], int]) -> int:
    """Apply ``update`` to ids in short transactions of a few hundred; the total changed."""
    total = 0
    for start in range(0, len(job_ids), _CHUNK):
        chunk = job_ids[start:start + _CHUNK]
        total += db.write(lambda conn, chunk=chunk: update(conn, chunk))
    return total


def redispatch_event(db: PgDatabase, event_id: str, dispatch_job: str, *, now: float) -> None:
    """Put an event back to ``pending`` and make its dispatch job due again, in one step.

    Raises:
        InvalidAction: the dispatch job is gone (pruned), or it is being dispatched now.
    """

    def write(conn: psycopg.Connection) -> None:
        check_redispatch(event_id, transitions.state_of(conn, dispatch_job))
        conn.execute("UPDATE runner_event SET status = 'pending' WHERE id = %s", (event_id,))
        transitions.retry_now(conn, [dispatch_job], now=now, reason="event replayed by hand")
        transitions.notify(conn, db.channel)

    db.write(write)


def _bulk_where(filters: JobFilter, states: Sequence[str]) -> tuple[str, list[object]]:
    return bulk_condition(*job_where(replace(filters, state=None)), states)


def count_for_bulk(db: PgDatabase, filters: JobFilter, states: Sequence[str]) -> tuple[int, int]:
    """(jobs, highest ``seq``) of the jobs of ``filters`` in ``states``: a bulk action's set."""
    where, params = _bulk_where(filters, states)
    count, top = db.query(f"SELECT count(*), max(seq) FROM runner_job{where}", params)[0]
    return count, top or 0


def run_bulk(db: PgDatabase, verb: str, filters: JobFilter, states: Sequence[str], *,
             up_to_rowid: int, now: float, chunk: int = 500, by: str | None = None) -> int:
    """Retry now, discard or cancel (``by`` asked) a counted set, oldest first, in short
    transactions; how many."""
    where, params = _bulk_where(filters, states)
    reason = cancel_reason(by) if verb == "cancel" else None
    # The pick reads a snapshot: a row a worker changes meanwhile is updated once its
    # lock is free, and PostgreSQL then tests again only the conditions on the row itself.
    recheck = f" AND state IN {sql_in(states)}"
    return walk_bulk(lambda last: db.write(lambda conn: transitions.by_hand_in_bulk(
        conn, verb, where, params, after=last, up_to=up_to_rowid, limit=chunk, now=now,
        channel=db.channel if verb == "retry" else None, recheck=recheck, reason=reason)))


# -- a failure group: the retrying and dead jobs of an error type and messages -------------


def _group_ranges(error_type: str | None, messages: Sequence[str | None]
                  ) -> list[tuple[str, list[object]]]:
    """Conditions on ``runner_job_failure`` (error type, messages, failed state): equality
    and ``IS NULL`` (an index range), never ``IS NOT DISTINCT FROM`` (a scan)."""
    kind, params = (("error_type IS NULL", []) if error_type is None
                    else ("error_type = %s", [error_type]))
    head = f"{kind} AND state IN {FAILED_SQL} AND "
    texts = [m for m in messages if m is not None]
    ranges = [(head + "error_message IS NULL", list(params))] if None in messages else []
    if texts:
        ranges.append((head + "error_message = ANY(%s)", [*params, texts]))
    return ranges


def count_failure_group(db: PgDatabase, error_type: str | None,
                        messages: Sequence[str | None]) -> tuple[int, int, float | None]:
    """(jobs, highest ``seq``, latest ``last_failed_at``) of a failure group: every job."""
    return group_totals(
        db.query(f"SELECT count(*), max(seq), max(last_failed_at) FROM runner_job WHERE {where}",
                 params)[0] for where, params in _group_ranges(error_type, messages))


def run_failure_group(db: PgDatabase, verb: str, error_type: str | None,
                      messages: Sequence[str | None], *, up_to_rowid: int,
                      failed_until: float | None, now: float, chunk: int = 500) -> int:
    """Retry now or discard a counted failure group, ``chunk`` jobs per transaction.

    Each step takes the next ``chunk`` counted jobs of the group's index range (``seq``
    up to ``up_to_rowid``, failed by ``failed_until``); a job changed leaves the range,
    so the walk ends at the first step that finds none.
    """
    total = 0
    channel = db.channel if verb == "retry" else None
    for where, params in _group_ranges(error_type, messages):
        pick = (f"SELECT seq FROM runner_job WHERE {where} AND seq <= %s "
                "AND (last_failed_at IS NULL OR last_failed_at <= %s) "
                f"LIMIT {int(chunk)}")
        chosen = (*params, up_to_rowid, failed_until)
        while True:
            changed = db.write(lambda conn, pick=pick, chosen=chosen: transitions.change_picked(
                conn, verb, pick, chosen, now, channel=channel,
                recheck=f" AND state IN {FAILED_SQL}"))
            if not changed:
                break
            total += len(changed)
    return total
