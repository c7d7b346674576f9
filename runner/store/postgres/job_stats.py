"""PostgreSQL: counts, rates and failure groups.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.job_stats`.
"""

from __future__ import annotations

from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.job_queries import queue_oldest, where
from runner.store.postgres.lookup import JOB_COLUMNS, SCHEDULE_ACTIVE
from runner.store.rows import FailureRow, JobFilter, JobRow
from runner.store.states import (
    COMPLETED_SQL,
    DEAD_SQL,
    EXECUTING_SQL,
    FAILED_SQL,
    LIVE_SQL,
    RETRYING_SQL,
    WAITING,
    WAITING_SQL,
    JobState,
)
from runner.store.views import FAILURE_CAP


class PostgresStats:
    """:class:`runner.store.job_stats.StatsStore` on a PostgreSQL database."""

    db: PgDatabase

    def count_in_state(self, state: JobState) -> int:
        """Jobs in one state."""
        db = self.db
        return db.query("SELECT count(*) FROM runner_job WHERE state = %s", (state.value,))[0][0]

    def completed_per_minute(self, start: float) -> list[tuple[int, int]]:
        """(minute index from ``start``, completions) for jobs finished since ``start``."""
        db = self.db
        return db.query(
            "SELECT trunc((finished_at - %s) / 60)::bigint AS m, count(*) FROM runner_job "
            f"WHERE finished_at >= %s AND state = {COMPLETED_SQL} GROUP BY m", (start, start))

    def failed_per_minute(self, start: float) -> list[tuple[int, int]]:
        """(minute index from ``start``, failed attempts) for attempts failed since ``start``."""
        db = self.db
        return db.query(
            "SELECT trunc((failed_at - %s) / 60)::bigint AS m, count(*) FROM runner_job_error "
            "WHERE failed_at >= %s GROUP BY m", (start, start))

    def finished_per_second(self, since: float,
                            until: float | None = None) -> tuple[dict[int, int], dict[int, int]]:
        """Completions and failed attempts per whole second in ``[since, until)``."""
        db = self.db
        end = float("inf") if until is None else until
        completed = dict(db.query(
            "SELECT trunc(finished_at)::bigint AS s, count(*) FROM runner_job "
            f"WHERE finished_at >= %s AND finished_at < %s AND state = {COMPLETED_SQL} "
            "GROUP BY s", (since, end)))
        failed = dict(db.query(
            "SELECT trunc(failed_at)::bigint AS s, count(*) FROM runner_job_error "
            "WHERE failed_at >= %s AND failed_at < %s GROUP BY s", (since, end)))
        return completed, failed

    def queue_oldest(self, now: float) -> list[tuple[str, float | None]]:
        return queue_oldest(self.db, now)

    def waiting_in_queue(self, queue: str) -> int:
        """Waiting jobs of one queue."""
        db = self.db
        return db.query(f"SELECT count(*) FROM runner_job WHERE queue = %s AND state IN "
                        f"{WAITING_SQL}", (queue,))[0][0]

    def running_per_queue(self) -> dict[str, int]:
        """Running jobs per queue."""
        db = self.db
        return dict(db.query(
            f"SELECT queue, count(*) FROM runner_job WHERE state = {EXECUTING_SQL} "
            "GROUP BY queue"))

    def running_jobs(self) -> list[tuple[str | None, str, str, float | None]]:
        """(lease owner, id, task, started_at) of every running job, oldest start first."""
        db = self.db
        return db.query("SELECT lease_owner, id, task, started_at FROM runner_job "
                        f"WHERE state = {EXECUTING_SQL} ORDER BY started_at")

    def unfinished_by_queue(self) -> list[tuple[str, str, int]]:
        return self.db.query(
            "SELECT queue, state, count(*) FROM runner_job WHERE state = ANY(%s) "
            "GROUP BY queue, state ORDER BY queue, state",
            ([s.value for s in (*WAITING, JobState.EXECUTING, JobState.DEAD)],))

    def counts_by_queue_and_state(self) -> list[tuple[str, str, int]]:
        """(queue, state, jobs) for every pair that has jobs."""
        db = self.db
        return db.query("SELECT queue, state, count(*) FROM runner_job GROUP BY queue, state")

    def job_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                 offset: int = 0) -> list[JobRow]:
        """One page of jobs, newest first, read through an index (``seq`` or ``created_at``)."""
        db = self.db
        chosen = filters or JobFilter()
        sql, params = where(chosen)
        if chosen.state in (None, "waiting", "failed") and not chosen.task:
            order = "seq DESC"
        else:
            order = "created_at DESC, seq DESC"
        rows = db.query(f"SELECT {JOB_COLUMNS} FROM runner_job{sql} ORDER BY {order} "
                        "LIMIT %s OFFSET %s", [*params, limit, offset])
        return [JobRow(*row) for row in rows]

    def count_jobs_capped(self, filters: JobFilter | None = None, *,
                          cap: int = 10_000) -> tuple[int, bool]:
        """How many jobs match, counting no further than ``cap``; returns (count, capped)."""
        db = self.db
        sql, params = where(filters)
        count = db.query(f"SELECT count(*) FROM (SELECT 1 FROM runner_job{sql} LIMIT %s) capped",
                         [*params, cap + 1])[0][0]
        return min(count, cap), count > cap

    def failure_rows(self, *, limit: int = 200, cap: int = FAILURE_CAP) -> list[FailureRow]:
        """Retrying and dead jobs grouped by error type and message, biggest group first.

        Groups the newest ``cap`` failed jobs: each state's are the tail of
        ``runner_job_state_created``, so at most ``cap`` of each are read.
        """
        db = self.db
        newest = ("(SELECT error_type, error_message, state, task, last_failed_at, created_at, "
                  "seq FROM runner_job WHERE state = %s ORDER BY created_at DESC LIMIT %s)")
        return db.query(
            "SELECT error_type, error_message, count(*), "
            f"count(*) FILTER (WHERE state = {DEAD_SQL}), "
            f"count(*) FILTER (WHERE state = {RETRYING_SQL}), string_agg(DISTINCT task, ','), "
            f"max(last_failed_at) FROM (SELECT * FROM ({newest} UNION ALL {newest}) failed "
            "ORDER BY created_at DESC, seq DESC LIMIT %s) newest "
            "GROUP BY error_type, error_message ORDER BY count(*) DESC, max(last_failed_at) DESC "
            "LIMIT %s", (JobState.DEAD.value, cap, JobState.RETRYING.value, cap, cap, limit))

    def failure_messages(self, error_type: str | None, *, prefix: str = "") -> list[str | None]:
        """The distinct messages of the failed jobs of ``error_type`` (``runner_job_failure``
        holds them in order); ``starts_with`` since a collation's order is no prefix range."""
        db = self.db
        kind = "error_type IS NULL" if error_type is None else "error_type = %s"
        sql = (f"SELECT DISTINCT error_message FROM runner_job WHERE {kind} "
               f"AND state IN {FAILED_SQL}")
        params: list[object] = [] if error_type is None else [error_type]
        if prefix:
            sql += " AND starts_with(error_message, %s)"
            params.append(prefix)
        return [r[0] for r in db.query(sql, params)]

    def failure_signature(self, *, cap: int = FAILURE_CAP) -> tuple[int, int]:
        """Changes whenever a failure group may have: (failed jobs, newest failed attempt id).

        Failed jobs are counted no further than ``cap + 1`` (more says there are more).
        """
        db = self.db
        count = db.query(f"SELECT count(*) FROM (SELECT 1 FROM runner_job WHERE state IN "
                         f"{FAILED_SQL} LIMIT %s) capped", (cap + 1,))[0][0]
        newest = db.query("SELECT max(id) FROM runner_job_error")[0][0]
        return count, newest or 0

    def completions_since(self, since: float) -> list[tuple[str, str, float | None, float]]:
        """(task, queue, started_at, finished_at) of jobs completed since ``since``."""
        db = self.db
        return db.query("SELECT task, queue, started_at, finished_at FROM runner_job "
                        f"WHERE finished_at >= %s AND state = {COMPLETED_SQL}", (since,))

    def failed_attempts_since(self, since: float) -> list[tuple[str, str, float, int]]:
        """(task, queue, failed_at, retried) of attempts failed since ``since``."""
        db = self.db
        return db.query(
            f"SELECT j.task, j.queue, e.failed_at, "
            f"(e.attempt < j.attempt OR j.state IN {LIVE_SQL})::int "
            "FROM runner_job_error e JOIN runner_job j ON j.id = e.job_id "
            "WHERE e.failed_at >= %s", (since,))

    def dead_by_task(self, since: float) -> list[tuple[str, str, int | None, int]]:
        """(task, queue, died since ``since``, dead now) per task and queue with dead jobs."""
        db = self.db
        return db.query(
            "SELECT task, queue, count(*) FILTER (WHERE finished_at >= %s), count(*) "
            f"FROM runner_job WHERE state = {DEAD_SQL} GROUP BY task, queue", (since,))

    def active_schedule_fires(self) -> list[tuple[str, float | None]]:
        """(name, next_fire_at) of every active schedule."""
        db = self.db
        return db.query(
            f"SELECT name, next_fire_at FROM runner_schedule WHERE {SCHEDULE_ACTIVE}")
