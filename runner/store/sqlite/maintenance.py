"""Retention and upkeep of the jobs database: prune, vacuum, checkpoint.

``[retention]`` (on by default; every worker runs a pass each ``interval``
seconds, and ``python -m runner prune`` runs one by hand):

* completed and cancelled jobs older than ``completed_days``, dead jobs older
  than ``dead_days`` are deleted with their errors, logs and results;
* log records older than ``logs_days`` (job lines and worker lines);
* events older than ``events_days`` whose handler jobs are all finished;
* stopped worker rows older than ``workers_days``;
* the waiting count and share turn of each queue with no job left that the
  settings do not name (:mod:`runner.store.sqlite.idle_queues`);
* then ``PRAGMA incremental_vacuum`` returns freed pages to the file system,
  and ``wal_checkpoint(TRUNCATE)`` shrinks the WAL once it is over
  ``wal_truncate_mb`` (a reader holding an old snapshot, such as a dashboard,
  only delays this to the next pass).

Deletes go in batches of ``batch_size`` rows, one short transaction each, so
claims are never held up for long.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Collection

from runner.config import Settings
from runner.errors import DatabaseLocked
from runner.service_sections import RetentionSection
from runner.store.batches import delete_in_batches, prune_jobs_in_batches
from runner.store.rows import PruneReport  # noqa: F401 - re-exported
from runner.store.sqlite import counters, transitions
from runner.store.sqlite.cancels import forget_settled_cancels
from runner.store.sqlite.db import Database
from runner.store.sqlite.events import prune_events
from runner.store.sqlite.idle_queues import forget_idle_queues
from runner.store.states import WorkerState, sql_is

logger = logging.getLogger(__name__)

DAY = 86400.0
INCREMENTAL = 2
#: A worker switches a file up to this size by itself at start (a VACUUM copies it).
AUTO_SWITCH_MAX_BYTES = 512 * 2**20
AUTO_VACUUM_OFF = ("auto_vacuum is off in this database (it was made by an older version), so "
                   "pruned rows leave free pages inside the file; run `python -m runner vacuum` "
                   "once (a full VACUUM; workers wait for it) to give space back from now on")
#: Worker rows retention forgets: not running, silent since the cut.
_GONE_WORKERS = f"state != {sql_is(WorkerState.RUNNING)} AND heartbeat_at < ?"


def retention_settings(settings: Settings) -> RetentionSection:
    """The ``[retention]`` section (typed and validated when the settings were loaded)."""
    return settings.retention


def _jobs_where(section: RetentionSection, now: float) -> tuple[str, tuple[float, float]]:
    return transitions.prunable(now - section.completed_days * DAY,
                                now - section.dead_days * DAY)


def prune(db: Database, section: RetentionSection, *, now: float | None = None,
          dry_run: bool = False, keep_queues: Collection[str] = ()) -> PruneReport:
    """Delete what retention says is old, and forget idle queues but ``keep_queues``;
    with ``dry_run`` only count them."""
    at = time.time() if now is None else now
    report = PruneReport()
    where, params = _jobs_where(section, at)
    log_cut = at - section.logs_days * DAY
    workers_cut = at - section.workers_days * DAY
    report.auto_vacuum = auto_vacuum_mode(db) == INCREMENTAL
    if dry_run:
        report.deleted["jobs"] = db.query(f"SELECT count(*) FROM runner_job WHERE {where}",
                                          params)[0][0]
        # The real run deletes a pruned job's records with it, whatever their age.
        report.deleted["logs"] = db.query(
            f"SELECT count(*) FROM runner_log WHERE created_at < ? OR job_id IN "
            f"(SELECT id FROM runner_job WHERE {where})", (log_cut, *params))[0][0]
        report.deleted["events"] = prune_events(db, section.events_days, now=at,
                                                dry_run=True)
        report.deleted["workers"] = db.query(
            f"SELECT count(*) FROM runner_worker WHERE {_GONE_WORKERS}", (workers_cut,))[0][0]
        report.forgotten_queues = forget_idle_queues(db, keep_queues, batch=section.batch_size,
                                                     dry_run=True)
        return report
    size = section.batch_size

    def jobs_batch(conn: sqlite3.Connection) -> tuple[int, int]:
        return transitions.prune(conn, completed_before=params[0], dead_before=params[1],
                                 limit=size)

    jobs, job_logs = prune_jobs_in_batches(lambda: db.write(jobs_batch), size)
    report.deleted["jobs"] = jobs
    report.deleted["logs"] = job_logs + delete_in_batches(lambda: db.write(lambda c: c.execute(
        "DELETE FROM runner_log WHERE id IN (SELECT id FROM runner_log WHERE created_at < ? "
        "LIMIT ?)", (log_cut, size)).rowcount), size)
    report.deleted["events"] = prune_events(db, section.events_days, now=at, batch=size)
    report.deleted["workers"] = db.write(lambda c: c.execute(
        f"DELETE FROM runner_worker WHERE {_GONE_WORKERS}", (workers_cut,)).rowcount)
    db.write(forget_settled_cancels)
    for queue, (kept, counted) in db.write(counters.recount_waiting).items():
        logger.warning("queue '%s' counted %d waiting jobs, there are %d: recounted (jobs "
                       "written by a process of an older release, or by hand)", queue, kept,
                       counted)
    report.forgotten_queues = forget_idle_queues(db, keep_queues, batch=section.batch_size)
    if section.vacuum:
        report.vacuumed_pages = incremental_vacuum(db)
    report.wal_bytes_before, report.wal_bytes_after, report.checkpoint_busy = checkpoint(
        db, min_bytes=int(section.wal_truncate_mb * 2**20))
    return report


def incremental_vacuum(db: Database) -> int:
    """Give free pages back to the file system; returns how many were freed."""
    (before,) = db.query("PRAGMA freelist_count")[0]
    if before:
        # Python's sqlite3 steps a statement without result columns once, and each
        # step of incremental_vacuum frees one page; a script runs it to the end
        # (in its own transaction).
        try:
            db.outside_transaction(lambda c: c.executescript("PRAGMA incremental_vacuum;"))
        except DatabaseLocked as exc:
            logger.warning("incremental vacuum skipped, the database stayed locked: %s", exc)
    (after,) = db.query("PRAGMA freelist_count")[0]
    return max(0, before - after)


def auto_vacuum_mode(db: Database) -> int:
    """``PRAGMA auto_vacuum``: 0 none, 1 full, 2 incremental."""
    return db.query("PRAGMA auto_vacuum")[0][0]


def other_running_workers(db: Database, *, me: str | None = None,
                          now: float | None = None) -> int:
    """Workers registered as running with a heartbeat in the last minute, ``me`` aside."""
    at = time.time() if now is None else now
    return db.query(f"SELECT count(*) FROM runner_worker WHERE state = "
                    f"{sql_is(WorkerState.RUNNING)} AND heartbeat_at > ? AND id IS NOT ?",
                    (at - 60.0, me))[0][0]


def switch_to_incremental_vacuum(db: Database) -> bool:
    """Rewrite the file once (``VACUUM``) so that pruning can give space back.

    A database made before ``auto_vacuum`` was set keeps freed pages for ever;
    SQLite changes the mode of a file that has tables only with a full VACUUM,
    which holds the write lock while it copies the file. Returns True when the
    mode is incremental afterwards.

    Raises:
        DatabaseLocked: another process held the database past ``busy_timeout``.
    """
    if auto_vacuum_mode(db) == INCREMENTAL:
        return True

    def vacuum(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")

    db.outside_transaction(vacuum)
    return auto_vacuum_mode(db) == INCREMENTAL


def enable_space_reclaim(db: Database, *, me: str | None = None) -> str | None:
    """At a worker's start: switch an old file to incremental auto_vacuum when that is safe.

    Safe means no other worker is running on the file (the VACUUM would make it
    wait) and the file is small enough to copy quickly. Returns what the
    operator should be told, or None when there is nothing to say.
    """
    if auto_vacuum_mode(db) == INCREMENTAL:
        return None
    try:
        size = db.path.stat().st_size
    except OSError:
        size = 0
    if size > AUTO_SWITCH_MAX_BYTES or other_running_workers(db, me=me):
        return AUTO_VACUUM_OFF
    try:
        switched = switch_to_incremental_vacuum(db)
    except DatabaseLocked:
        return AUTO_VACUUM_OFF
    if not switched:
        return AUTO_VACUUM_OFF
    logger.warning("%s: switched to incremental auto_vacuum (one-time VACUUM of %.1f MiB); "
                   "pruning now gives space back", db.path, size / 2**20)
    return None


def wal_size(db: Database) -> int:
    """Bytes of the database's WAL file (0 when there is none)."""
    try:
        return os.path.getsize(f"{db.path}-wal")
    except OSError:
        return 0


def checkpoint(db: Database, *, min_bytes: int = 0) -> tuple[int, int, bool]:
    """``wal_checkpoint(TRUNCATE)`` when the WAL is over ``min_bytes``.

    Returns (WAL bytes before, after, busy); busy means a reader or writer kept
    it from finishing, and the WAL size is logged.
    """
    before = wal_size(db)
    if before <= min_bytes and min_bytes:
        return before, before, False
    # PASSIVE never waits; TRUNCATE waits for readers, so only try it once no
    # reader pins old frames (else a dashboard's snapshot would stall this thread).
    busy, log, done = db.query("PRAGMA wal_checkpoint(PASSIVE)")[0]
    if not busy and done >= log:
        busy, _, _ = db.query("PRAGMA wal_checkpoint(TRUNCATE)")[0]
    else:
        busy = 1
    after = wal_size(db)
    if busy:
        logger.warning("WAL checkpoint blocked by a reader or writer; WAL is %.1f MiB "
                       "(a process holds an old read snapshot?)", after / 2**20)
    return before, after, bool(busy)


def vacuum_file(db: Database, *, force: bool = False) -> str:
    """``python -m runner vacuum``: switch the file to incremental auto_vacuum; what was done.

    Raises:
        DatabaseLocked: workers are running and ``force`` is False (the VACUUM
            copies the whole file under the write lock).
    """
    if auto_vacuum_mode(db) == INCREMENTAL:
        return f"{db.path}: auto_vacuum is already incremental; nothing to do"
    running = other_running_workers(db)
    if running and not force:
        raise DatabaseLocked(f"{db.path}: {running} worker(s) running; stop them first (the "
                             "VACUUM copies the whole file under the write lock) or pass --force")
    before = db.path.stat().st_size
    switch_to_incremental_vacuum(db)
    return (f"{db.path}: auto_vacuum is now incremental; file {before / 2**20:.1f} -> "
            f"{db.path.stat().st_size / 2**20:.1f} MiB")
