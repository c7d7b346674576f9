"""The SQL behind the dashboard's panels (``python -m tui``), one function per panel.

Every function takes a (normally read-only) :class:`Database`, runs a few
short indexed queries through :meth:`Database.query` (which fetches every row
and closes its cursor) and returns plain dataclasses, so no snapshot outlives
the call. Tables that a given database may not have yet (schedules, events,
logs) read as empty instead of failing: the dashboard works on any version.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from runner.store.rows import JobRow
from runner.store.sqlite.db import Database
from runner.store.sqlite.models import JOB_COLUMNS
from runner.store.sqlite.queries import (
    JobFilter,
    job_where,
    list_workers,
    state_is,
    waiting_total,
)
from runner.store.sqlite.stats import count_in_state
from runner.store.sqlite.stats import queue_oldest as oldest_due_by_queue
from runner.store.states import COMPLETED_SQL, EXECUTING_SQL, JobState, WorkerState, sql_is
from runner.store.tables import STORED_JOB_COLUMNS, job_columns
from runner.store.views import (  # noqa: F401 - re-exported
    JOB_SORTS,
    JOB_STATES,
    RECENT_SAMPLE,
    SORT_WINDOW,
    SUMMARY_DEAD_LIMIT,
    JobPage,
    LogLine,
    PageKey,
    RunningJob,
    RunTimes,
    Summary,
    WorkerLoad,
    check_sort,
    keyset_page,
    percentile,
    ranked_page,
    run_times,
    worker_loads,
)

RUNNING_SQL = sql_is(WorkerState.RUNNING)


def summary(db: Database, now: float | None = None,
            rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None, *,
            done_last_minute: int | None = None, stale_after: float = 15.0,
            dead_limit: int = SUMMARY_DEAD_LIMIT, gone: Sequence[str] = ()) -> Summary:
    """Counts of the live states and dead jobs, rates and the latency.

    Args:
        rates: the per-minute buckets of :func:`throughput` when the caller has
            them already (saves reading the last hour twice).
        done_last_minute: completions in the last 60 seconds when the caller
            keeps them (else they are counted).
        stale_after: a worker whose heartbeat is older than this is not alive;
            the jobs it holds count as stalled, not running.
        gone: workers known dead whatever their heartbeat (this host's whose process is
            gone): their jobs are stalled too.
        dead_limit: dead jobs are counted up to this many (they grow with history).
    """
    at = time.time() if now is None else now
    # Covering ranges of the state indexes; available jobs are counted by the triggers.
    counts = {state: count_in_state(db, state) for state in (
        JobState.SCHEDULED, JobState.RETRYING, JobState.EXECUTING)}
    counts[JobState.DEAD] = db.query(
        f"SELECT count(*) FROM (SELECT 1 FROM runner_job INDEXED BY runner_job_state_created "
        f"WHERE {state_is(JobState.DEAD.value)} LIMIT ?)", (JobState.DEAD.value,
                                                            dead_limit + 1))[0][0]
    counts[JobState.AVAILABLE] = max(0, waiting_total(db) - counts[JobState.SCHEDULED]
                                     - counts[JobState.RETRYING])
    stalled = stalled_count(db, at, stale_after, gone) if counts[JobState.EXECUTING] else 0
    # A queue whose waiting jobs are all due later has no oldest due job (None).
    oldest = min((o for _, o in oldest_due_by_queue(db, at) if o is not None), default=None)
    completed, failed = rates if rates is not None else throughput(db, at, minutes=60)
    done, errors = sum(completed), sum(failed)
    if done_last_minute is None:
        done_last_minute = db.query(
            "SELECT count(*) FROM runner_job INDEXED BY runner_job_finished "
            f"WHERE finished_at > ? AND state = {COMPLETED_SQL}", (at - 60,))[0][0]
    return Summary(
        at=at, waiting=counts[JobState.AVAILABLE], running=counts[JobState.EXECUTING] - stalled,
        scheduled=counts[JobState.SCHEDULED], retrying=counts[JobState.RETRYING],
        dead=min(counts[JobState.DEAD], dead_limit),
        completed_per_minute=float(done_last_minute),
        error_rate=errors / (done + errors) if done + errors else None,
        oldest_waiting_age=None if oldest is None else max(0.0, at - oldest),
        stalled=stalled, dead_capped=counts[JobState.DEAD] > dead_limit)


def live_worker_ids(db: Database, now: float, stale_after: float) -> frozenset[str]:
    """Workers registered as running whose heartbeat is younger than ``stale_after``."""
    return frozenset(r[0] for r in db.query(
        f"SELECT id FROM runner_worker WHERE state = {RUNNING_SQL} AND heartbeat_at >= ?",
        (now - stale_after,)))


def stalled_count(db: Database, now: float, stale_after: float,
                  gone: Sequence[str] = ()) -> int:
    """Executing jobs whose lease ran out or whose worker's heartbeat is stale or gone, or
    whose worker is one of ``gone``."""
    dead = f" OR lease_owner IN ({','.join('?' * len(gone))})" if gone else ""
    return db.query(
        f"SELECT count(*) FROM runner_job WHERE state = {EXECUTING_SQL} "
        "AND (lease_expires_at < ? "
        "OR lease_owner IS NULL OR lease_owner NOT IN (SELECT id FROM runner_worker "
        f"WHERE state = {RUNNING_SQL} AND heartbeat_at >= ?){dead})",
        (now, now - stale_after, *gone))[0][0]


def throughput(db: Database, now: float | None = None, *,
               minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Completions and failed attempts per minute, oldest minute first.

    The last bucket is the current (partial) minute. Minutes are aligned to the
    clock so that buckets read at different times agree.
    """
    at = time.time() if now is None else now
    end = (int(at) // 60 + 1) * 60
    start = end - minutes * 60
    completed = [0] * minutes
    failed = [0] * minutes
    for index, count in db.query(
            "SELECT CAST((finished_at - ?) / 60 AS INTEGER), count(*) FROM runner_job "
            f"INDEXED BY runner_job_finished WHERE finished_at >= ? AND state = {COMPLETED_SQL} "
            "GROUP BY 1", (start, start)):
        if 0 <= index < minutes:
            completed[index] += count
    for index, count in db.query(
            "SELECT CAST((failed_at - ?) / 60 AS INTEGER), count(*) FROM runner_job_error "
            "WHERE failed_at >= ? GROUP BY 1", (start, start)):
        if 0 <= index < minutes:
            failed[index] += count
    return tuple(completed), tuple(failed)


def recent_run_times(db: Database, *,
                     sample: int = RECENT_SAMPLE) -> tuple[RunTimes, dict[str, RunTimes]]:
    """p50/p95 run time, overall and per queue.

    Reads only the newest ``sample`` completed jobs through the ``finished_at``
    index, so the cost is fixed whatever the history or the job rate.
    """
    rows = db.query("SELECT queue, finished_at, finished_at - started_at FROM runner_job "
                    "INDEXED BY runner_job_finished WHERE finished_at IS NOT NULL "
                    f"AND state = {COMPLETED_SQL} ORDER BY finished_at DESC LIMIT ?", (sample,))
    return run_times(rows)


def read_worker_loads(db: Database, *, include_stopped: bool = False) -> list[WorkerLoad]:
    """Registered workers with the jobs each holds a lease on."""
    return worker_loads(db.query("SELECT lease_owner, id, task, started_at FROM runner_job "
                                 f"WHERE state = {EXECUTING_SQL} ORDER BY started_at"),
                        list_workers(db, include_stopped=include_stopped))


def _in_insertion_order(filters: JobFilter) -> bool:
    # With one state (but available), a (state, created_at) index gives the order;
    # otherwise insertion order (rowid, the same as creation order) does: no index
    # orders available jobs by time, and the task index leaves waiting jobs out.
    return filters.state in (None, "waiting", "failed", JobState.AVAILABLE.value)


def job_page(db: Database, filters: JobFilter | None = None, *, limit: int = 100,
             after: PageKey | None = None, oldest_first: bool = False, sort: str = "newest",
             now: float | None = None) -> JobPage:
    """One page of jobs in ``sort`` order from ``after`` on, always read through an index.

    ``newest`` and ``oldest`` (or ``oldest_first``) are keyset paged: every page
    is an index range read, so the last page of a million jobs costs what the
    first does, and a million jobs never get sorted or skipped. ``duration``
    (longest first; a running job counts until ``now``) and ``attempts`` (most
    first) rank the newest :data:`SORT_WINDOW` matches.

    Raises:
        ValueError: ``sort`` is not one of :data:`JOB_SORTS`.
    """
    check_sort(sort)
    chosen = filters or JobFilter()
    where, params = job_where(chosen)
    if sort in ("duration", "attempts"):
        return _ranked_page(db, where, params, limit=limit, after=after, sort=sort,
                            by_rowid=_in_insertion_order(chosen), now=now)
    oldest_first = oldest_first or sort == "oldest"
    clauses = [where[len(" WHERE "):]] if where else []
    sign, way = (">", "ASC") if oldest_first else ("<", "DESC")
    if _in_insertion_order(chosen):
        if after is not None:
            clauses.append(f"rowid {sign} ?")
            params.append(after.rowid)
        order = f"rowid {way}"
    else:
        if after is not None:
            clauses.append(f"(created_at, rowid) {sign} (?, ?)")
            params += [after.created_at, after.rowid]
        order = f"created_at {way}, rowid {way}"
    condition = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = db.query(f"SELECT rowid, {JOB_COLUMNS} FROM runner_job{condition} ORDER BY {order} "
                    "LIMIT ?", [*params, limit + 1])
    return keyset_page(rows, limit, _CREATED)


_CREATED = list(JobRow.__dataclass_fields__).index("created_at")
#: A job row read from the window of recent jobs a ranked sort orders (only the page's
#: rows count their requested attempts).
_RECENT_COLUMNS = job_columns("recent")


def page_key_at(db: Database, at: float, filters: JobFilter | None = None, *,
                oldest_first: bool = False) -> PageKey:
    """The page key that starts a listing at the time ``at``.

    Newest first, the page shows jobs created at or before ``at``; oldest first,
    jobs created after it. In insertion order the rowid of that moment is found
    by a binary search over rowids (about 20 index seeks on a million jobs). Rowids
    follow creation but for jobs moved out of the intake together queue by queue
    (queues of unequal weights: :mod:`.transitions.intake`): among those, the moment
    is found to within the move.
    """
    chosen = filters or JobFilter()
    if not _in_insertion_order(chosen):
        return PageKey(at, 2**62)  # past every rowid of that instant
    # Two queries: SQLite answers a lone min() or max() with one seek, both at once with a scan.
    low = db.query("SELECT min(rowid) FROM runner_job")[0][0]
    high = db.query("SELECT max(rowid) FROM runner_job")[0][0]
    if low is None:
        return PageKey(at, 0)
    found = low - 1  # the last rowid created at or before ``at``
    while low <= high:
        middle = (low + high) // 2
        row = db.query("SELECT rowid, created_at FROM runner_job WHERE rowid >= ? "
                       "ORDER BY rowid LIMIT 1", (middle,))
        if not row or row[0][1] > at:
            high = middle - 1
        else:
            found = max(found, row[0][0])
            low = row[0][0] + 1
    return PageKey(at, found + 1 if not oldest_first else found)


def _ranked_page(db: Database, where: str, params: list, *, limit: int, after: PageKey | None,
                 sort: str, by_rowid: bool, now: float | None) -> JobPage:
    newest = "rowid DESC" if by_rowid else "created_at DESC, rowid DESC"
    offset = after.rowid if after is not None else 0
    at = time.time() if now is None else now
    rank = (f"CASE WHEN state = {EXECUTING_SQL} AND started_at IS NOT NULL THEN ? - started_at "
            "WHEN finished_at >= started_at THEN finished_at - started_at END"
            if sort == "duration" else "attempt")
    rank_params = [at] if sort == "duration" else []
    rows = db.query(
        f"SELECT {_RECENT_COLUMNS} FROM (SELECT {STORED_JOB_COLUMNS}, rowid AS seq "
        f"FROM runner_job{where} ORDER BY {newest} LIMIT ?) recent "
        f"ORDER BY ({rank}) IS NULL, ({rank}) DESC, seq DESC "
        "LIMIT ? OFFSET ?",
        [*params, SORT_WINDOW, *rank_params, *rank_params, limit + 1, offset])
    return ranked_page(rows, limit, offset)


