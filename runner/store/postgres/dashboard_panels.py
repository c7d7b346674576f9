"""PostgreSQL: the dashboard's panels, the same answers as SQLite's.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.dashboard_panels`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.job_queries import list_workers, queue_oldest, where
from runner.store.postgres.lookup import JOB_COLUMNS
from runner.store.rows import JobFilter, JobRow
from runner.store.states import (
    COMPLETED_SQL,
    DEAD_SQL,
    EXECUTING_SQL,
    JobState,
    WorkerState,
    sql_is,
)
from runner.store.tables import STORED_JOB_COLUMNS, job_columns
from runner.store.views import (
    RECENT_SAMPLE,
    SORT_WINDOW,
    SUMMARY_DEAD_LIMIT,
    JobPage,
    PageKey,
    RunTimes,
    Summary,
    WorkerLoad,
    check_sort,
    in_insertion_order,
    keyset_page,
    ranked_page,
    run_times,
    worker_loads,
)

RUNNING_SQL = sql_is(WorkerState.RUNNING)


def stalled_count(db: PgDatabase, now: float, stale_after: float,
                  gone: Sequence[str] = ()) -> int:
    """Executing jobs whose lease ran out or whose worker's heartbeat is stale or gone, or
    whose worker is one of ``gone``."""
    return db.query(
        f"SELECT count(*) FROM runner_job WHERE state = {EXECUTING_SQL} "
        "AND (lease_expires_at < %s OR lease_owner IS NULL OR lease_owner NOT IN "
        f"(SELECT id FROM runner_worker WHERE state = {RUNNING_SQL} AND heartbeat_at >= %s) "
        "OR lease_owner = ANY(%s))", (now, now - stale_after, list(gone)))[0][0]


def throughput(db: PgDatabase, now: float | None = None, *,
               minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Completions and failed attempts per clock-aligned minute, oldest minute first."""
    at = time.time() if now is None else now
    end = (int(at) // 60 + 1) * 60
    start = end - minutes * 60
    completed, failed = [0] * minutes, [0] * minutes
    for index, count in db.query(
            "SELECT floor((finished_at - %s) / 60)::bigint AS m, count(*) FROM runner_job "
            f"WHERE finished_at >= %s AND state = {COMPLETED_SQL} GROUP BY m", (start, start)):
        if 0 <= index < minutes:
            completed[index] += count
    for index, count in db.query(
            "SELECT floor((failed_at - %s) / 60)::bigint AS m, count(*) FROM runner_job_error "
            "WHERE failed_at >= %s GROUP BY m", (start, start)):
        if 0 <= index < minutes:
            failed[index] += count
    return tuple(completed), tuple(failed)

_CREATED = list(JobRow.__dataclass_fields__).index("created_at")
#: A job row read from the window of recent jobs a ranked sort orders (only the page's
#: rows count their requested attempts).
_RECENT_COLUMNS = job_columns("recent")


def _ranked_page(db: PgDatabase, condition: str, params: list, *, limit: int,
                 after: PageKey | None, sort: str, by_seq: bool, now: float | None) -> JobPage:
    newest = "seq DESC" if by_seq else "created_at DESC, seq DESC"
    offset = after.rowid if after is not None else 0
    at = time.time() if now is None else now
    rank = (f"CASE WHEN state = {EXECUTING_SQL} AND started_at IS NOT NULL THEN %s - started_at "
            "WHEN finished_at >= started_at THEN finished_at - started_at END"
            if sort == "duration" else "attempt")
    rank_params = [at] if sort == "duration" else []
    rows = db.query(
        f"SELECT {_RECENT_COLUMNS} FROM (SELECT {STORED_JOB_COLUMNS}, seq FROM runner_job"
        f"{condition} ORDER BY {newest} LIMIT %s) recent "
        f"ORDER BY ({rank}) IS NULL, ({rank}) DESC, seq DESC "
        "LIMIT %s OFFSET %s",
        [*params, SORT_WINDOW, *rank_params, *rank_params, limit + 1, offset])
    return ranked_page(rows, limit, offset)


class PostgresDashboard:
    """:class:`runner.store.dashboard_panels.DashboardStore` on a PostgreSQL database."""

    db: PgDatabase

    def summary(self, now: float | None = None,
                rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None, *,
                done_last_minute: int | None = None, stale_after: float = 15.0,
                dead_limit: int = SUMMARY_DEAD_LIMIT, gone: Sequence[str] = ()) -> Summary:
        """Counts of the live states and dead jobs, rates and the latency."""
        db = self.db
        at = time.time() if now is None else now
        counts = dict.fromkeys((JobState.AVAILABLE, JobState.SCHEDULED, JobState.RETRYING,
                                JobState.EXECUTING), 0)
        counts.update({JobState(s): n for s, n in db.query(
            "SELECT state, count(*) FROM runner_job WHERE state = ANY(%s) GROUP BY state",
            ([s.value for s in counts],))})
        # Dead jobs are history: counted only up to the limit, at every refresh.
        (dead,) = db.query(f"SELECT count(*) FROM (SELECT 1 FROM runner_job WHERE state = "
                           f"{DEAD_SQL} LIMIT %s) capped", (dead_limit + 1,))[0]
        stalled = (stalled_count(db, at, stale_after, gone) if counts[JobState.EXECUTING]
                   else 0)
        oldest = min((o for _, o in queue_oldest(db, at) if o is not None), default=None)
        completed, failed = rates if rates is not None else throughput(db, at, minutes=60)
        done, errors = sum(completed), sum(failed)
        if done_last_minute is None:
            done_last_minute = db.query(
                "SELECT count(*) FROM runner_job WHERE finished_at > %s "
                f"AND state = {COMPLETED_SQL}", (at - 60,))[0][0]
        return Summary(
            at=at, waiting=counts[JobState.AVAILABLE], running=counts[JobState.EXECUTING] - stalled,
            scheduled=counts[JobState.SCHEDULED], retrying=counts[JobState.RETRYING],
            dead=min(dead, dead_limit), completed_per_minute=float(done_last_minute),
            error_rate=errors / (done + errors) if done + errors else None,
            oldest_waiting_age=None if oldest is None else max(0.0, at - oldest), stalled=stalled,
            dead_capped=dead > dead_limit)

    def live_worker_ids(self, now: float, stale_after: float) -> frozenset[str]:
        """Workers registered as running whose heartbeat is younger than ``stale_after``."""
        db = self.db
        return frozenset(r[0] for r in db.query(
            f"SELECT id FROM runner_worker WHERE state = {RUNNING_SQL} AND heartbeat_at >= %s",
            (now - stale_after,)))

    def stalled_count(self, now: float, stale_after: float, gone: Sequence[str] = ()) -> int:
        return stalled_count(self.db, now, stale_after, gone)

    def throughput(self, now: float | None = None, *,
                   minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return throughput(self.db, now, minutes=minutes)

    def recent_run_times(self, *, sample: int = RECENT_SAMPLE
                         ) -> tuple[RunTimes, dict[str, RunTimes]]:
        """p50/p95 run time of the newest ``sample`` completions."""
        db = self.db
        rows = db.query("SELECT queue, finished_at, finished_at - started_at FROM runner_job "
                        f"WHERE finished_at IS NOT NULL AND state = {COMPLETED_SQL} "
                        "ORDER BY finished_at DESC LIMIT %s", (sample,))
        return run_times(rows)

    def worker_loads(self, *, include_stopped: bool = False) -> list[WorkerLoad]:
        """Registered workers with the jobs each holds a lease on."""
        db = self.db
        return worker_loads(db.query("SELECT lease_owner, id, task, started_at FROM runner_job "
                                     f"WHERE state = {EXECUTING_SQL} ORDER BY started_at"),
                            list_workers(db, include_stopped=include_stopped))

    def keyset_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                    after: PageKey | None = None, oldest_first: bool = False,
                    sort: str = "newest", now: float | None = None) -> JobPage:
        """One page of jobs in ``sort`` order from ``after`` on (keyset paged by ``seq``).

        Raises:
            ValueError: ``sort`` is not one of :data:`JOB_SORTS`.
        """
        db = self.db
        check_sort(sort)
        chosen = filters or JobFilter()
        condition, params = where(chosen)
        if sort in ("duration", "attempts"):
            return _ranked_page(db, condition, params, limit=limit, after=after, sort=sort,
                                by_seq=in_insertion_order(chosen), now=now)
        oldest_first = oldest_first or sort == "oldest"
        clauses = [condition[len(" WHERE "):]] if condition else []
        sign, way = (">", "ASC") if oldest_first else ("<", "DESC")
        if in_insertion_order(chosen):
            if after is not None:
                clauses.append(f"seq {sign} %s")
                params.append(after.rowid)
            order = f"seq {way}"
        else:
            if after is not None:
                clauses.append(f"(created_at, seq) {sign} (%s, %s)")
                params += [after.created_at, after.rowid]
            order = f"created_at {way}, seq {way}"
        picked = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = db.query(f"SELECT seq, {JOB_COLUMNS} FROM runner_job{picked} ORDER BY {order} "
                        "LIMIT %s", [*params, limit + 1])
        return keyset_page(rows, limit, _CREATED)

    def page_key_at(self, at: float, filters: JobFilter | None = None, *,
                    oldest_first: bool = False) -> PageKey:
        """The page key that starts a listing at the time ``at``."""
        db = self.db
        if not in_insertion_order(filters or JobFilter()):
            return PageKey(at, 2**62)
        (found,) = db.query("SELECT max(seq) FROM runner_job WHERE created_at <= %s", (at,))[0]
        found = 0 if found is None else found
        return PageKey(at, found + 1 if not oldest_first else found)
