"""Data side of stored log records (``runner_log``): insert, cap, read, prune.

Read by ``python -m runner logs`` and the dashboard's log tail; written by the
worker's :class:`runner.logsink.LogSink`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from runner.store.rows import LogFilter, LogTuple, parse_level  # noqa: F401 - re-exported
from runner.store.sqlite.db import Database, contains_pattern
from runner.store.sqlite.integrity import has_table
from runner.store.sqlite.models import LogRow

_COLUMNS = ", ".join(LogRow.__dataclass_fields__)


def insert_logs(conn: sqlite3.Connection, rows: Sequence[LogTuple]) -> None:
    """Insert records inside the caller's transaction."""
    conn.executemany(
        "INSERT INTO runner_log (created_at, level, logger, message, job_id, task, worker) "
        "VALUES (?,?,?,?,?,?,?)", rows)


def trim_logs(conn: sqlite3.Connection, max_rows: int) -> int:
    """Keep at most about ``max_rows`` newest records (ids are increasing); returns deleted."""
    (top,) = conn.execute("SELECT max(id) FROM runner_log").fetchone()
    if top is None or top <= max_rows:
        return 0
    return conn.execute("DELETE FROM runner_log WHERE id <= ?", (top - max_rows,)).rowcount


def write_logs(db: Database, rows: Sequence[LogTuple], *, trim_to: int = 0,
               deadline: float = 5.0) -> None:
    """Insert records in one transaction; with ``trim_to``, keep about that many newest."""

    def write(conn: sqlite3.Connection) -> None:
        insert_logs(conn, rows)
        if trim_to:
            trim_logs(conn, trim_to)

    db.write(write, deadline=deadline)


def log_where(filters: LogFilter) -> tuple[str, list[object]]:
    """The SQL condition of ``filters`` and its parameters."""
    clauses: list[str] = []
    params: list[object] = []
    if filters.job_id:
        clauses.append("job_id = ?")
        params.append(filters.job_id)
    if filters.task:
        clauses.append("task = ?")
        params.append(filters.task)
    if filters.level:
        clauses.append("level >= ?")
        params.append(filters.level)
    if filters.worker_only:
        clauses.append("job_id IS NULL")
    return (" AND " + " AND ".join(clauses)) if clauses else "", params


def read_logs(db: Database, filters: LogFilter | None = None, *, after_id: int = 0,
              limit: int = 200) -> list[LogRow]:
    """Records after ``after_id``, oldest first; with ``after_id`` 0, the last ``limit``."""
    where, params = log_where(filters or LogFilter())
    if after_id:
        rows = db.query(f"SELECT {_COLUMNS} FROM runner_log WHERE id > ?{where} "
                        f"ORDER BY id LIMIT ?", [after_id, *params, limit])
    else:
        rows = db.query(f"SELECT {_COLUMNS} FROM runner_log WHERE 1{where} "
                        f"ORDER BY id DESC LIMIT ?", [*params, limit])
        rows.reverse()
    return [LogRow(*row) for row in rows]


def job_log_bytes(db: Database, job_id: str) -> int:
    """Message bytes stored for one job."""
    return db.query("SELECT coalesce(sum(length(message)), 0) FROM runner_log "
                    "WHERE job_id = ?", (job_id,))[0][0]


def tail_logs(db: Database, *, after_id: int = 0, job_id: str | None = None,
              min_level: int = 0, text: str | None = None, limit: int = 500) -> list[LogRow]:
    """Stored log records after ``after_id``, oldest first; with 0, the newest ``limit``.

    Empty when the database has no log table.
    """
    if not has_table(db, "runner_log"):
        return []
    clauses, params = ["id > ?"], [after_id]
    if job_id:
        clauses.append("job_id = ?")
        params.append(job_id)
    if min_level:
        clauses.append("level >= ?")
        params.append(min_level)
    if text:
        clauses.append("(message LIKE ? ESCAPE '\\' OR logger LIKE ? ESCAPE '\\' OR "
                       "task LIKE ? ESCAPE '\\')")
        params += [contains_pattern(text)] * 3
    order = "ASC" if after_id else "DESC"
    rows = db.query(f"SELECT {', '.join(LogRow.__dataclass_fields__)} FROM runner_log "
                    f"WHERE {' AND '.join(clauses)} ORDER BY id {order} LIMIT ?",
                    [*params, limit])
    if not after_id:
        rows.reverse()
    return [LogRow(*row) for row in rows]
