"""PostgreSQL: the metrics scrape's snapshot, bounded by tasks x queues.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.metrics_scrape`.
"""

from __future__ import annotations

from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.flow_control import list_pauses, read_backpressure
from runner.store.postgres.lookup import SCHEDULE_ACTIVE
from runner.store.postgres.worker_presence import server_now
from runner.store.states import (
    DEAD_SQL,
    EXECUTING_SQL,
    WAITING_SQL,
    JobState,
    WorkerState,
    sql_is,
)
from runner.store.views import (
    BUCKETS,
    COUNT_LIMIT,
    DatabaseSnapshot,
    QueueGauges,
    TaskTotals,
)

RUNNING_SQL = sql_is(WorkerState.RUNNING)

_TOTALS = ("enqueued", JobState.COMPLETED.value, "failed", "retried", JobState.DEAD.value,
           JobState.CANCELLED.value)

_BUCKETS = tuple(f"le{i}" for i in range(len(BUCKETS)))


def read_totals(db: PgDatabase) -> list[TaskTotals]:
    """Every (task, queue)'s lifetime counters, the shards added up."""
    columns = (*_TOTALS, "duration_sum", *_BUCKETS)
    rows = db.query(f"SELECT task, queue, {', '.join(f'sum({c})' for c in columns)} "
                    "FROM runner_job_total GROUP BY task, queue ORDER BY task, queue")
    n = len(_TOTALS)
    return [TaskTotals(r[0], r[1], *(int(v) for v in r[2:2 + n]), float(r[2 + n]),
                       tuple(int(v) for v in r[3 + n:])) for r in rows]


def _capped_count(db: PgDatabase, sql: str, params: tuple) -> int:
    return int(db.query(f"SELECT count(*) FROM ({sql} LIMIT {COUNT_LIMIT}) capped",
                        params)[0][0])


def waiting_queues(db: PgDatabase) -> list[str]:
    """Queues with waiting jobs: one index seek per queue (a loose index scan)."""
    index = f"runner_job WHERE state IN {WAITING_SQL}"
    return [q for (q,) in db.query(
        f"WITH RECURSIVE q(name) AS (SELECT min(queue) FROM {index} UNION ALL "
        f"SELECT (SELECT min(queue) FROM {index} AND queue > q.name) FROM q "
        f"WHERE q.name IS NOT NULL) SELECT name FROM q WHERE name IS NOT NULL")]


class PostgresScrape:
    """:class:`runner.store.metrics_scrape.ScrapeStore` on a PostgreSQL database."""

    db: PgDatabase

    def read_snapshot(self, *, now: float | None = None,
                      heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
        """The database-wide snapshot a scrape reads (bounded by tasks x queues)."""
        db = self.db
        # Waiting ages and heartbeats are measured against times every host wrote by
        # the server's clock, or corrected to it: the scraping host's may be off.
        at = server_now(db) if now is None else now
        totals = read_totals(db)
        running = dict(db.query(
            "SELECT queue, count(*) FROM (SELECT queue FROM runner_job "
            f"WHERE state = {EXECUTING_SQL} LIMIT {COUNT_LIMIT}) held GROUP BY queue"))
        waiting = f"FROM runner_job WHERE queue = %s AND state IN {WAITING_SQL}"
        names = sorted({t.queue for t in totals} | set(running) | set(waiting_queues(db)))
        queues = []
        for queue in names:
            due = _capped_count(db, f"SELECT 1 {waiting} AND run_at <= %s", (queue, at))
            later = _capped_count(db, f"SELECT 1 {waiting} AND run_at > %s", (queue, at))
            (oldest,) = db.query(f"SELECT min(run_at) {waiting}", (queue,))[0]
            age = max(0.0, at - oldest) if oldest is not None and oldest <= at else 0.0
            queues.append(QueueGauges(queue, due, later, int(running.get(queue, 0)), age))
        dead = _capped_count(db, f"SELECT 1 FROM runner_job WHERE state = {DEAD_SQL}", ())
        # A heartbeat is written by its worker's clock: aged by the server's.
        (workers,) = db.query(f"SELECT count(*) FROM runner_worker WHERE state = {RUNNING_SQL} "
                              "AND heartbeat_at - coalesce(clock_offset, 0) >= %s",
                              (at - heartbeat_limit,))[0]
        lags = {str(n): max(0.0, at - float(t)) if t is not None else 0.0 for n, t in db.query(
            f"SELECT name, next_fire_at FROM runner_schedule WHERE {SCHEDULE_ACTIVE}")}
        paused = {p.name: p.paused for p in list_pauses(db) if p.kind == "queue"}
        return DatabaseSnapshot(at, totals, queues, int(dead), int(workers), lags,
                                read_backpressure(db), paused)

    def waiting_queues(self) -> list[str]:
        return waiting_queues(self.db)
