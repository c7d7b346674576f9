"""Writing a SQLite jobs file into PostgreSQL: waiting jobs, schedules, pauses and recent
history, as :class:`runner.store.sqlite.export.FileExport` reads them.

Every row is inserted with ``ON CONFLICT DO NOTHING`` (failed attempts by their
natural key, job, attempt, kind and time), so a copy interrupted half way, or run twice,
leaves each row once; what PostgreSQL already holds (a worker running there
meanwhile) is never overwritten. Paused (and explicitly resumed) queues and tasks
keep their state: a queue paused on the file must not start running on PostgreSQL.
``runner_meta`` records the file copied (``copied_from``), so a copy run again is told
from a copy of another file into a database holding jobs of its own, the last log
record copied from it (``copied_log``), and how far the copies read its jobs and
events (:mod:`.copy_marks`: what ran here and was pruned is not copied back).

A job the file has running arrives settled as the file's recovery of a dead worker
settles it (see :mod:`runner.store.sqlite.export`): cancelled, requeued, or charged a
crash. The outcome is counted as it arrives, and a crash's failed attempt is written
in the same transaction, after the job's earlier ones (a job's history reads in the
order its attempts were written).

The file's lifetime counters arrive too. Those per task and queue go to a shard
of their own (:data:`COPIED_SHARD`, which no connection writes) set to the file's
values, or kept when larger: counters only grow, so a second copy counts nothing
twice and a later one brings what the file counted since. Failed attempts copied
with their jobs are counted by PostgreSQL's trigger as they arrive; the copy takes
them off again in the same transaction, as the file's total already holds them.
Jobs refused or dropped by a full queue (one row per queue, no shards) are
copied for the queues PostgreSQL has not counted yet.

huey's revocations arrive unless PostgreSQL holds the key; ``runner_meta`` keeps a
digest of each one copied (``copied_revocation:<key>``), so a copy run again does not
bring back a revocation restored on PostgreSQL since, nor a ``revoke_once`` used up
there. Their write notifies the workers listening, as a revoke there does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg

from runner.store.postgres import PostgresStore, copy_marks
from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.counting import count_where
from runner.store.postgres.wakeup import REVOKED
from runner.store.sqlite.export import (
    ERROR_COLUMNS,
    EVENT_COLUMNS,
    JOB_COLUMNS,
    LOG_COLUMNS,
    PAUSE_COLUMNS,
    RESULT_COLUMNS,
    RUN_COLUMNS,
    SCHEDULE_COLUMNS,
    TOTAL_COLUMNS,
    FileExport,
    TransferReport,
    digest,
)

#: The shard of ``runner_job_total`` that holds a copied file's counters (a connection's
#: shard is its backend's pid modulo 16, never negative).
COPIED_SHARD = -1
#: The start of the ``runner_meta`` key remembering a revocation copied.
REVOKED_MARK = "copied_revocation:"


def copied_from(store: PostgresStore) -> str | None:
    """The file PostgreSQL holds a copy of (None: none was copied here)."""
    rows = store.db.query("SELECT value FROM runner_meta WHERE key = 'copied_from'")
    return rows[0][0] if rows else None


def read_before_pruning(store: PostgresStore) -> tuple[int, int]:
    """The rowids of jobs and events in the file a copy reads past (see
    :mod:`.copy_marks`)."""
    return copy_marks.up_to(store.db)


def record_source(store: PostgresStore, source: str) -> None:
    """Record ``source`` as the file copied here (before its first row arrives); another
    file's mark of the log records copied goes (it says nothing of this one)."""
    if copied_from(store) == source:
        return

    def write(conn: psycopg.Connection) -> None:
        conn.execute("DELETE FROM runner_meta WHERE left(key, 7) = 'copied_' "
                     "AND key != 'copied_from'")
        _set_meta(conn, "copied_from", source)

    store.db.write(write)


def _set_meta(conn: psycopg.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO runner_meta (key, value) VALUES (%s, %s) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


def _copy_logs(export: FileExport, target: PgDatabase, report: TransferReport) -> None:
    """Log records have no natural key: the id in the file of the last one copied, kept
    in the transaction that copies it, is where a later copy goes on."""
    rows = target.query("SELECT value FROM runner_meta WHERE key = 'copied_log'")
    report.read.setdefault("logs", 0)  # listed when none is new since the last copy
    report.written.setdefault("logs", 0)
    for batch in export.logs(int(rows[0][0]) if rows else 0):
        def write(conn: psycopg.Connection, batch: list[tuple] = batch) -> None:
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO runner_log ({', '.join(LOG_COLUMNS[1:])}) "
                                f"VALUES ({', '.join(['%s'] * (len(LOG_COLUMNS) - 1))})",
                                [row[1:] for row in batch])
            _set_meta(conn, "copied_log", str(batch[-1][0]))

        target.write(write)
        report.read["logs"] = report.written["logs"] = report.read.get("logs", 0) + len(batch)


def _copy_revocations(export: FileExport, target: PgDatabase, report: TransferReport) -> None:
    marks = dict(target.query("SELECT substr(key, %s), value FROM runner_meta "
                              "WHERE left(key, %s) = %s",
                              (len(REVOKED_MARK) + 1, len(REVOKED_MARK), REVOKED_MARK)))
    for rows in export.revocations():
        report.read["revocations"] = report.read.get("revocations", 0) + len(rows)
        new = [(key, bytes(value), digest(bytes(value))) for key, value in rows
               if marks.get(key) != digest(bytes(value))]
        if not new:
            continue

        def write(conn: psycopg.Connection, new: list[tuple] = new) -> int:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO runner_kv (key, value) VALUES (%s, %s) "
                                "ON CONFLICT DO NOTHING RETURNING 1",
                                [(key, value) for key, value, _ in new], returning=True)
                written = 0
                while True:
                    written += len(cur.fetchall())
                    if not cur.nextset():
                        break
                cur.executemany("INSERT INTO runner_meta (key, value) VALUES (%s, %s) "
                                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                [(REVOKED_MARK + key, mark) for key, _, mark in new])
            if written and target.channel:  # workers there forget that none existed
                conn.execute("SELECT pg_notify(%s, %s)", (target.channel, REVOKED))
            return written

        report.written["revocations"] = (report.written.get("revocations", 0)
                                         + target.write(write))


def _insert(target: PgDatabase, table: str, columns: list[str], rows: list[tuple], *,
            returning: str = "1",
            then: Callable[[psycopg.Connection, list], None] | None = None) -> int:
    """Insert the rows not there yet; ``then`` gets the connection and the ``returning``
    values of the rows written, in the same transaction."""

    def write(conn: psycopg.Connection) -> int:
        written = _insert_new_rows(conn, table, columns, rows, returning)
        if then is not None and written:
            then(conn, written)
        return len(written)

    return target.write(write)


def _count_settled(conn: psycopg.Connection, export: FileExport, job_ids: list) -> None:
    """Count the outcomes the copy gave jobs running on the file (a cancel asked, a
    crash): the file never counted them."""
    by_outcome: dict[str, list] = {}
    for job_id in job_ids:
        if job_id in export.settled:
            by_outcome.setdefault(export.settled[job_id], []).append(job_id)
    for outcome, ids in sorted(by_outcome.items()):
        count_where(conn, outcome, "id = ANY(%s)", (ids,))


def _write_crashes(conn: psycopg.Connection, export: FileExport, job_ids: list,
                   report: TransferReport) -> None:
    """The crashes charged to jobs just written, each after the job's failed attempts of
    the file (which the copy of errors then finds there)."""
    crashed = [i for i in job_ids if i in export.crashes]
    if not crashed:
        return
    earlier = [row for rows in export.errors_of(crashed).values() for row in rows]
    copied = _insert_errors(conn, earlier)
    if copied:  # the trigger counted them: the file's total holds them already
        _uncount_failures(conn, copied)
    _insert_errors(conn, [export.crashes[i] for i in crashed])  # counted: the file did not
    report.read["errors"] = report.read.get("errors", 0) + len(crashed)
    report.written["errors"] = report.written.get("errors", 0) + len(copied) + len(crashed)


def _insert_errors(conn: psycopg.Connection, rows: list[tuple]) -> list[str]:
    """Copy failed attempts not there yet, as the file's other rows are copied; the job ids
    of those written."""
    if not rows:
        return []
    return _insert_new_rows(conn, "runner_job_error", ERROR_COLUMNS, rows, "job_id")


def _insert_new_rows(conn: psycopg.Connection, table: str, columns: Sequence[str],
                     rows: list, returning: str) -> list:
    """Insert the rows not there yet, in the caller's transaction; the ``returning`` value
    of each row written."""
    marks = ", ".join(["%s"] * len(columns))
    written: list = []
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
                        f"ON CONFLICT DO NOTHING RETURNING {returning}", rows, returning=True)
        while True:
            written += [row[0] for row in cur.fetchall()]
            if not cur.nextset():
                return written


def _uncount_failures(conn: psycopg.Connection, job_ids: list) -> None:
    """Take copied failed attempts off the counters (the copied totals hold them)."""
    # The trigger added them to this connection's shard, within this transaction.
    conn.execute(
        "INSERT INTO runner_job_total (task, queue, failed) "
        "SELECT j.task, j.queue, -count(*) FROM unnest(%s::text[]) AS e(job_id) "
        "JOIN runner_job j ON j.id = e.job_id GROUP BY j.task, j.queue "
        "ORDER BY j.task, j.queue ON CONFLICT (task, queue, shard) "
        "DO UPDATE SET failed = runner_job_total.failed + excluded.failed", (job_ids,))


def _copy_totals(export: FileExport, target: PgDatabase, report: TransferReport) -> None:
    """The file's lifetime counters: per task and queue, then refused and dropped per queue."""
    columns = ", ".join(TOTAL_COLUMNS)
    rows = export.totals()
    if rows:
        marks = ", ".join(["%s"] * (len(TOTAL_COLUMNS) + 3))
        larger = ", ".join(f"{c} = greatest(runner_job_total.{c}, excluded.{c})"
                           for c in TOTAL_COLUMNS)
        # Only rows whose values change are written (and reported as new).
        changed = " OR ".join(f"runner_job_total.{c} < excluded.{c}" for c in TOTAL_COLUMNS)

        def write(conn: psycopg.Connection) -> int:
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO runner_job_total (task, queue, shard, {columns}) "
                    f"VALUES ({marks}) ON CONFLICT (task, queue, shard) DO UPDATE SET {larger} "
                    f"WHERE {changed} RETURNING 1",
                    [(r[0], r[1], COPIED_SHARD, *r[2:]) for r in rows], returning=True)
                written = 0
                while True:
                    written += len(cur.fetchall())
                    if not cur.nextset():
                        return written

        report.read["counters"] = len(rows)
        report.written["counters"] = target.write(write)
    queues = export.queue_totals()
    if queues:
        report.read["queue counters"] = len(queues)
        report.written["queue counters"] = _insert(
            target, "runner_queue_total", ["queue", "rejected", "dropped"], queues)


def copy_from_sqlite(export: FileExport, store: PostgresStore) -> TransferReport:
    """Copy what ``export`` reads of the file, each row unless PostgreSQL holds it."""
    report = TransferReport()
    target = store.db

    def copy(name: str, table: str, columns: list[str], batches: Iterator[list[tuple]],
             **insert: Any) -> None:
        for rows in batches:
            report.read[name] = report.read.get(name, 0) + len(rows)
            report.written[name] = report.written.get(name, 0) + _insert(
                target, table, columns, rows, **insert)

    # before the jobs: a worker already on PostgreSQL never claims one ahead of its revocation
    _copy_revocations(export, target, report)
    def jobs_written(conn: psycopg.Connection, ids: list) -> None:
        _count_settled(conn, export, ids)
        _write_crashes(conn, export, ids, report)
        copy_marks.mark_read(conn, "jobs", export.rowids[-1])

    copy("jobs", "runner_job", JOB_COLUMNS, export.jobs(), returning="id", then=jobs_written)
    copy("errors", "runner_job_error", ERROR_COLUMNS, export.errors(),
         returning="job_id", then=_uncount_failures)
    copy("results", "runner_kv", RESULT_COLUMNS, export.results())
    copy("schedules", "runner_schedule", SCHEDULE_COLUMNS, export.schedules())
    copy("schedule runs", "runner_schedule_run", RUN_COLUMNS, export.schedule_runs())
    copy("events", "runner_event", EVENT_COLUMNS, export.events(),
         then=lambda conn, _: copy_marks.mark_read(conn, "events", export.rowids[-1]))
    copy("pauses", "runner_pause", PAUSE_COLUMNS, export.pauses())
    _copy_logs(export, target, report)
    _copy_totals(export, target, report)
    if target.channel and report.written.get("jobs"):  # idle workers there look at once
        target.write(lambda conn: conn.execute("SELECT pg_notify(%s, '')", (target.channel,)))
    return report
