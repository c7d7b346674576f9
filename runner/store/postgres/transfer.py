"""Moving a SQLite jobs file over to PostgreSQL: waiting jobs, schedules, pauses and recent
history.

Every row is inserted with ``ON CONFLICT DO NOTHING`` (failed attempts by their
natural key, job, attempt, kind and time), so a copy interrupted half way, or run twice,
leaves each row once; what PostgreSQL already holds (a worker running there
meanwhile) is never overwritten. Jobs left ``executing`` in the file (its
workers were stopped, or died) arrive ``available``: their attempt was cut short.
Paused (and explicitly resumed) queues and tasks keep their state: a queue paused
on the file must not start running on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg

from runner.store.postgres.connection import PgDatabase
from runner.store.sqlite.db import Database
from runner.store.sqlite.integrity import has_table
from runner.store.states import LIVE_SQL, JobState
from runner.store.tables import Event, Job, JobError, Pause, Schedule, ScheduleRun

_BATCH = 1000


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


def _insert(target: PgDatabase, table: str, columns: list[str], rows: list[tuple]) -> int:
    marks = ", ".join(["%s"] * len(columns))

    def write(conn: psycopg.Connection) -> int:
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
                            "ON CONFLICT DO NOTHING RETURNING 1", rows, returning=True)
            written = 0
            while True:
                written += len(cur.fetchall())
                if not cur.nextset():
                    return written

    return target.write(write)


def copy_from_sqlite(source: Database, target: PgDatabase, *, history_since: float,
                     channel: str | None = None) -> TransferReport:
    """Copy live jobs, schedules, pauses, and what finished or fired since
    ``history_since``."""
    report = TransferReport()

    def copy(name: str, table: str, columns: list[str], tables: str, where: str,
             params: tuple = (), fix: Callable[[tuple], tuple] | None = None) -> None:
        selected = ", ".join(f"t.{c}" for c in columns)
        for rows in _batches(source, selected, tables, where, params):
            report.read[name] = report.read.get(name, 0) + len(rows)
            if fix is not None:
                rows = [fix(row) for row in rows]
            report.written[name] = report.written.get(name, 0) + _insert(
                target, table, columns, rows)

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
         f"j.state IN {LIVE_SQL} OR j.finished_at >= ?", (history_since,))
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
    if channel and report.written.get("jobs"):
        target.write(lambda conn: conn.execute("SELECT pg_notify(%s, '')", (channel,)))
    return report
