"""PostgreSQL: stored log records (``runner_log``): insert, cap, read.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.log_store`.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.lookup import contains_pattern
from runner.store.rows import LogFilter, LogRow, LogTuple
from runner.store.sqlite.logs import log_where

_COLUMNS = ", ".join(LogRow.__dataclass_fields__)


class PostgresLogs:
    """:class:`runner.store.log_store.LogsStore` on a PostgreSQL database."""

    db: PgDatabase

    def write_logs(self, rows: Sequence[LogTuple], *, trim_to: int = 0,
                   deadline: float = 5.0) -> None:
        """Insert records in one transaction; with ``trim_to``, keep about that many newest."""
        db = self.db

        def write(conn: psycopg.Connection) -> None:
            if rows:
                columns = list(zip(*rows, strict=True))
                conn.execute(
                    "INSERT INTO runner_log (created_at, level, logger, message, job_id, task, "
                    "worker) SELECT * FROM unnest(%s::float8[], %s::bigint[], %s::text[], "
                    "%s::text[], %s::text[], %s::text[], %s::text[])",
                    [list(c) for c in columns])
            if trim_to:
                (top,) = conn.execute("SELECT max(id) FROM runner_log").fetchone()
                if top is not None and top > trim_to:
                    conn.execute("DELETE FROM runner_log WHERE id <= %s", (top - trim_to,))

        db.write(write, deadline=deadline)

    def read_logs(self, filters: LogFilter | None = None, *, after_id: int = 0,
                  limit: int = 200) -> list[LogRow]:
        """Records after ``after_id``, oldest first; with ``after_id`` 0, the last ``limit``."""
        db = self.db
        where, params = log_where(filters or LogFilter())
        where = where.replace("?", "%s")
        if after_id:
            rows = db.query(f"SELECT {_COLUMNS} FROM runner_log WHERE id > %s{where} "
                            f"ORDER BY id LIMIT %s", [after_id, *params, limit])
        else:
            rows = db.query(f"SELECT {_COLUMNS} FROM runner_log WHERE true{where} "
                            f"ORDER BY id DESC LIMIT %s", [*params, limit])
            rows.reverse()
        return [LogRow(*row) for row in rows]

    def tail_logs(self, *, after_id: int = 0, job_id: str | None = None, min_level: int = 0,
                  text: str | None = None, limit: int = 500) -> list[LogRow]:
        """Stored log records after ``after_id``, oldest first; with 0, the newest ``limit``."""
        db = self.db
        clauses, params = ["id > %s"], [after_id]
        if job_id:
            clauses.append("job_id = %s")
            params.append(job_id)
        if min_level:
            clauses.append("level >= %s")
            params.append(min_level)
        if text:
            # ILIKE: the search ignores case, as SQLite's LIKE does
            clauses.append("(message ILIKE %s ESCAPE '\\' OR logger ILIKE %s ESCAPE '\\' OR "
                           "task ILIKE %s ESCAPE '\\')")
            params += [contains_pattern(text)] * 3
        order = "ASC" if after_id else "DESC"
        rows = db.query(f"SELECT {_COLUMNS} FROM runner_log WHERE {' AND '.join(clauses)} "
                        f"ORDER BY id {order} LIMIT %s", [*params, limit])
        if not after_id:
            rows.reverse()
        return [LogRow(*row) for row in rows]

    def job_log_bytes(self, job_id: str) -> int:
        """Message bytes stored for one job."""
        db = self.db
        return db.query("SELECT coalesce(sum(octet_length(message)), 0)::bigint FROM runner_log "
                        "WHERE job_id = %s", (job_id,))[0][0]
