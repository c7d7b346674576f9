"""PostgreSQL: reads of jobs and workers for the CLI, and the job filter every read shares.

Insertion order is ``seq`` (SQLite's ``rowid``); sums over conditions are
``count(*) FILTER (...)``, so every count comes back as an integer.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.job_queries`.
"""

from __future__ import annotations

import time

from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.lookup import JOB_COLUMNS, lookup_id
from runner.store.rows import AttemptError, JobFilter, JobRow, QueueDepth, WorkerRow, found_job
from runner.store.sqlite.queries import job_where
from runner.store.states import (
    ALL,
    EXECUTING_SQL,
    FUTURE,
    LIVE_SQL,
    WAITING_SQL,
    WorkerState,
    sql_in,
    sql_is,
)


def where(filters: JobFilter | None) -> tuple[str, list[object]]:
    """The SQL condition of a job filter, in this dialect (``%s`` parameters)."""
    # The shared condition uses only standard SQL (LIKE ... ESCAPE '\\' included);
    # only the parameter marks differ, and the search ignores case as SQLite's LIKE does.
    sql, params = job_where(filters or JobFilter(), like="ILIKE")
    return sql.replace("?", "%s"), params


def has_future_jobs(db: PgDatabase) -> bool:
    """True when some job waits for a later ``run_at``."""
    return bool(db.query(f"SELECT 1 FROM runner_job WHERE state IN {sql_in(FUTURE)} LIMIT 1"))


def job_state(db: PgDatabase, job_id: str) -> str | None:
    """A job's state, or None when there is no such job."""
    rows = db.query("SELECT state FROM runner_job WHERE id = %s", (job_id,))
    return rows[0][0] if rows else None


def queue_oldest(db: PgDatabase, now: float) -> list[tuple[str, float | None]]:
    """Each queue with waiting jobs and the ``run_at`` of its oldest due one."""
    rows = db.query(f"SELECT queue, min(run_at) FROM runner_job WHERE state IN {WAITING_SQL} "
                    f"GROUP BY queue ORDER BY queue")
    return [(q, first if first is not None and first <= now else None) for q, first in rows]


def list_workers(db: PgDatabase, *, include_stopped: bool = False) -> list[WorkerRow]:
    """Worker processes, most recent heartbeat first."""
    cond = "" if include_stopped else f" WHERE state = {sql_is(WorkerState.RUNNING)}"
    rows = db.query(f"SELECT {', '.join(WorkerRow.__dataclass_fields__)} FROM runner_worker"
                    f"{cond} ORDER BY heartbeat_at DESC")
    return [WorkerRow(*row) for row in rows]


class PostgresQueries:
    """:class:`runner.store.job_queries.QueriesStore` on a PostgreSQL database."""

    db: PgDatabase

    def list_jobs(self, filters: JobFilter | None = None, *, limit: int = 100,
                  offset: int = 0) -> list[JobRow]:
        """Jobs matching ``filters``, newest first, one page at a time.

        Jobs of one instant list the last inserted (highest ``seq``) first, as the
        dashboard's pages do.
        """
        db = self.db
        sql, params = where(filters)
        rows = db.query(f"SELECT {JOB_COLUMNS} FROM runner_job{sql} "
                        "ORDER BY created_at DESC, seq DESC LIMIT %s OFFSET %s",
                        [*params, limit, offset])
        return [JobRow(*row) for row in rows]

    def count_jobs(self, filters: JobFilter | None = None) -> int:
        """How many jobs match ``filters``."""
        db = self.db
        sql, params = where(filters)
        return db.query(f"SELECT count(*) FROM runner_job{sql}", params)[0][0]

    def job_ids(self, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
        """Ids of the jobs matching ``filters`` (for bulk actions)."""
        db = self.db
        sql, params = where(filters)
        return [r[0] for r in db.query(f"SELECT id FROM runner_job{sql} LIMIT %s",
                                       [*params, limit])]

    def get_job(self, job_id: str) -> JobRow:
        """One job by id, or by a unique start or end of its id.

        Raises:
            JobNotFound: no job, or the prefix is ambiguous.
        """
        return found_job(lambda: lookup_id(self.db, "runner_job", JOB_COLUMNS, job_id), job_id)

    def job_errors(self, job_id: str) -> list[AttemptError]:
        """Every failed attempt of a job, oldest first (the timeline)."""
        db = self.db
        rows = db.query(
            "SELECT attempt, kind, error_type, message, traceback, worker, started_at, failed_at "
            "FROM runner_job_error WHERE job_id = %s ORDER BY id", (job_id,))
        return [AttemptError(*row) for row in rows]

    def counts_by_state(self) -> dict[str, int]:
        """Number of jobs in each state (states with none are 0)."""
        db = self.db
        counts = dict.fromkeys((s.value for s in ALL), 0)
        counts.update(dict(db.query("SELECT state, count(*) FROM runner_job GROUP BY state")))
        return counts

    def queue_depths(self, now: float | None = None) -> list[QueueDepth]:
        """Waiting and running jobs per queue, with the age of the oldest due waiting job."""
        db = self.db
        at = time.time() if now is None else now
        rows = db.query(
            f"SELECT queue, count(*) FILTER (WHERE state IN {WAITING_SQL}), "
            f"count(*) FILTER (WHERE state = {EXECUTING_SQL}), "
            f"min(run_at) FILTER (WHERE state IN {WAITING_SQL} AND run_at <= %s) "
            f"FROM runner_job WHERE state IN {LIVE_SQL} GROUP BY queue ORDER BY queue", (at,))
        return [QueueDepth(q, int(w), int(r), None if o is None else max(0.0, at - o))
                for q, w, r, o in rows]

    def list_workers(self, *, include_stopped: bool = False) -> list[WorkerRow]:
        return list_workers(self.db, include_stopped=include_stopped)

    def stored_result(self, job_id: str) -> bytes | None:
        """The result stored for a job (peeked, never consumed), or None."""
        db = self.db
        rows = db.query("SELECT value FROM runner_kv WHERE key = %s", (job_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def job_payload(self, job_id: str) -> bytes | None:
        """The serialized task of a job in any state, or None."""
        rows = self.db.query("SELECT data FROM runner_job WHERE id = %s", (job_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None
