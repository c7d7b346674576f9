"""Moving a SQLite jobs file over to PostgreSQL: waiting jobs, schedules, pauses and recent
history.

Every row is inserted with ``ON CONFLICT DO NOTHING`` (failed attempts by their
natural key, job, attempt, kind and time), so a copy interrupted half way, or run twice,
leaves each row once; what PostgreSQL already holds (a worker running there
meanwhile) is never overwritten. Jobs left ``executing`` in the file (its
workers were stopped, or died) arrive ``available``: their attempt was cut short.
Paused (and explicitly resumed) queues and tasks keep their state: a queue paused
on the file must not start running on PostgreSQL.

The file's lifetime counters arrive too. Those per task and queue go to a shard
of their own (:data:`COPIED_SHARD`, which no connection writes) set to the file's
values, or kept when larger: counters only grow, so a second copy counts nothing
twice and a later one brings what the file counted since. Failed attempts copied
with their jobs are counted by PostgreSQL's trigger as they arrive; the copy takes
them off again in the same transaction, as the file's total already holds them.
Jobs refused or dropped by a full queue (one row per queue, no shards) are
copied for the queues PostgreSQL has not counted yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.counting import COMPLETED_COLUMNS
from runner.store.sqlite.counters import QUEUE_ROW, TOTALS
from runner.store.sqlite.db import Database
from runner.store.sqlite.integrity import has_table
from runner.store.states import LIVE_SQL, JobState
from runner.store.tables import Event, Job, JobError, Pause, Schedule, ScheduleRun

_BATCH = 1000
#: The shard of ``runner_job_total`` that holds a copied file's counters (a connection's
#: shard is its backend's pid modulo 16, never negative).
COPIED_SHARD = -1
#: Counters per task and queue, as both backends name them.
_TOTAL_COLUMNS = tuple(dict.fromkeys((*TOTALS, *COMPLETED_COLUMNS)))


def _columns(model: type) -> list[str]:
    return [f.column_name for f in model._meta.sorted_fields]


@dataclass
class TransferReport:
    """Rows read from the file and rows new in PostgreSQL, per table."""

    read: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)


def _batches(source: Database, columns: str, tables: str, where: str,
             params: tuple = ()) -> Iterator[list[tuple]]:
    """The rows of a read of the file, a batch at a time by rowid (no long read snapshot).

    ``tables`` names the table read first as ``t``.
    """
    last = 0
    while True:
        rows = source.query(f"SELECT t.rowid, {columns} FROM {tables} WHERE ({where}) "
                            f"AND t.rowid > ? ORDER BY t.rowid LIMIT {_BATCH}", (*params, last))
        if not rows:
            return
        last = rows[-1][0]
        yield [row[1:] for row in rows]


def _insert(target: PgDatabase, table: str, columns: list[str], rows: list[tuple], *,
            returning: str = "1",
            then: Callable[[psycopg.Connection, list], None] | None = None) -> int:
    """Insert the rows not there yet; ``then`` gets the connection and the ``returning``
    values of the rows written, in the same transaction."""
    marks = ", ".join(["%s"] * len(columns))

    def write(conn: psycopg.Connection) -> int:
        written: list = []
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
                            f"ON CONFLICT DO NOTHING RETURNING {returning}", rows,
                            returning=True)
            while True:
                written += [row[0] for row in cur.fetchall()]
                if not cur.nextset():
                    break
        if then is not None and written:
            then(conn, written)
        return len(written)

    return target.write(write)


def _uncount_failures(conn: psycopg.Connection, job_ids: list) -> None:
    """Take copied failed attempts off the counters (the copied totals hold them)."""
    # The trigger added them to this connection's shard, within this transaction.
    conn.execute(
        "INSERT INTO runner_job_total (task, queue, failed) "
        "SELECT j.task, j.queue, -count(*) FROM unnest(%s::text[]) AS e(job_id) "
        "JOIN runner_job j ON j.id = e.job_id GROUP BY j.task, j.queue "
        "ORDER BY j.task, j.queue ON CONFLICT (task, queue, shard) "
        "DO UPDATE SET failed = runner_job_total.failed + excluded.failed", (job_ids,))


def _copy_totals(source: Database, target: PgDatabase, report: TransferReport) -> None:
    """The file's lifetime counters: per task and queue, then refused and dropped per queue."""
    columns = ", ".join(_TOTAL_COLUMNS)
    rows = []
    if has_table(source, "runner_job_total"):
        rows = source.query(f"SELECT task, queue, {columns} FROM runner_job_total "
                            "WHERE task != ? ORDER BY task, queue", (QUEUE_ROW,))
    if rows:
        marks = ", ".join(["%s"] * (len(_TOTAL_COLUMNS) + 3))
        larger = ", ".join(f"{c} = greatest(runner_job_total.{c}, excluded.{c})"
                           for c in _TOTAL_COLUMNS)
        # Only rows whose values change are written (and reported as new).
        changed = " OR ".join(f"runner_job_total.{c} < excluded.{c}" for c in _TOTAL_COLUMNS)

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
    if has_table(source, "runner_queue_total"):
        queues = source.query("SELECT queue, rejected, dropped FROM runner_queue_total "
                              "ORDER BY queue")
        if queues:
            report.read["queue counters"] = len(queues)
            report.written["queue counters"] = _insert(
                target, "runner_queue_total", ["queue", "rejected", "dropped"], queues)


def copy_from_sqlite(source: Database, target: PgDatabase, *, history_since: float,
                     channel: str | None = None) -> TransferReport:
    """Copy live jobs, schedules, pauses, and what finished or fired since
    ``history_since``."""
    report = TransferReport()

    def copy(name: str, table: str, columns: list[str], tables: str, where: str,
             params: tuple = (), fix: Callable[[tuple], tuple] | None = None,
             **insert: Any) -> None:
        selected = ", ".join(f"t.{c}" for c in columns)
        for rows in _batches(source, selected, tables, where, params):
            report.read[name] = report.read.get(name, 0) + len(rows)
            if fix is not None:
                rows = [fix(row) for row in rows]
            report.written[name] = report.written.get(name, 0) + _insert(
                target, table, columns, rows, **insert)

    job_columns = _columns(Job)
    state_at = job_columns.index("state")
    lease = (job_columns.index("lease_owner"), job_columns.index("lease_expires_at"))

    def unleased(row: tuple) -> tuple:
        if row[state_at] != JobState.EXECUTING.value:
            return row
        values = list(row)
        values[state_at] = JobState.AVAILABLE.value
        values[lease[0]] = values[lease[1]] = None
        return tuple(values)

    copy("jobs", "runner_job", job_columns, "runner_job t",
         f"t.state IN {LIVE_SQL} OR t.finished_at >= ?", (history_since,), fix=unleased)
    copy("errors", "runner_job_error", [c for c in _columns(JobError) if c != "id"],
         "runner_job_error t JOIN runner_job j ON j.id = t.job_id",
         f"j.state IN {LIVE_SQL} OR j.finished_at >= ?", (history_since,),
         returning="job_id", then=_uncount_failures)
    copy("results", "runner_kv", ["key", "value", "expires_at"],
         "runner_kv t JOIN runner_job j ON j.id = t.key", "j.finished_at >= ?",
         (history_since,))
    copy("schedules", "runner_schedule", _columns(Schedule), "runner_schedule t", "1")
    copy("schedule runs", "runner_schedule_run", [c for c in _columns(ScheduleRun) if c != "id"],
         "runner_schedule_run t", "t.fired_at >= ?", (history_since,))
    copy("events", "runner_event", _columns(Event), "runner_event t",
         "t.status = 'pending' OR t.emitted_at >= ?", (history_since,))
    if has_table(source, "runner_pause"):  # a file of a release before pauses has none
        copy("pauses", "runner_pause", _columns(Pause), "runner_pause t", "1")
    _copy_totals(source, target, report)
    if channel and report.written.get("jobs"):
        target.write(lambda conn: conn.execute("SELECT pg_notify(%s, '')", (channel,)))
    return report
