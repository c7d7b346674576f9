"""The database-wide figures a Prometheus scrape reads (see runner.readmodel.scrape).

Every read is bounded: the counters table has a row per task and queue;
backlog counts walk a partial index and stop at :data:`COUNT_LIMIT`; the
oldest waiting job is one index seek per queue and level of priority.
"""

from __future__ import annotations

import time

from runner.store.sqlite.backlog import OLDEST_WAITING, QUEUE_PARKED
from runner.store.sqlite.conditions import CLAIMABLE_WHERE, NOT_WAITING, PARKED_WHERE
from runner.store.sqlite.counters import read_backpressure, read_totals
from runner.store.sqlite.db import Database
from runner.store.sqlite.models import SCHEDULE_ACTIVE
from runner.store.sqlite.pauses import list_pauses
from runner.store.states import DEAD_SQL, EXECUTING_SQL, WorkerState, sql_is
from runner.store.views import COUNT_LIMIT, DatabaseSnapshot, QueueGauges  # noqa: F401 - re-exported


def _capped_count(db: Database, sql: str, params: tuple) -> int:
    return int(db.query(f"SELECT count(*) FROM ({sql} LIMIT {COUNT_LIMIT})", params)[0][0])


def read_database(db: Database, *, now: float | None = None,
                  heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
    """Read the database-wide snapshot (cost bounded by tasks x queues, not by jobs)."""
    at = time.time() if now is None else now
    totals = read_totals(db)
    running = dict(db.query(
        "SELECT queue, count(*) FROM (SELECT queue FROM runner_job INDEXED BY runner_job_lease "
        f"WHERE state = {EXECUTING_SQL} LIMIT {COUNT_LIMIT}) GROUP BY queue"))
    waiting = (f"FROM runner_job INDEXED BY runner_job_queue_claim WHERE queue = ?1 "
               f"AND {CLAIMABLE_WHERE}")
    names = sorted({t.queue for t in totals} | set(running) | set(waiting_queues(db)))
    queues = []
    for queue in names:
        due = _capped_count(db, f"SELECT 1 {waiting} AND run_at <= ?2 UNION ALL "
                                f"SELECT 1 FROM {QUEUE_PARKED} AND run_at <= ?2", (queue, at))
        later = _capped_count(db, f"SELECT 1 {waiting} AND run_at > ?2", (queue, at))
        (oldest,) = db.query(OLDEST_WAITING, (queue,))[0]
        age = max(0.0, at - oldest) if oldest is not None and oldest <= at else 0.0
        queues.append(QueueGauges(queue, due, later, int(running.get(queue, 0)), age))
    dead = _capped_count(db, "SELECT 1 FROM runner_job INDEXED BY runner_job_state_created "
                             f"WHERE state = {DEAD_SQL} AND {NOT_WAITING}", ())
    (workers,) = db.query(f"SELECT count(*) FROM runner_worker WHERE state = "
                          f"{sql_is(WorkerState.RUNNING)} "
                          "AND heartbeat_at - coalesce(clock_offset, 0) >= ?",
                          (at - heartbeat_limit,))[0]
    lags = {str(n): max(0.0, at - float(t)) if t is not None else 0.0 for n, t in db.query(
        f"SELECT name, next_fire_at FROM runner_schedule WHERE {SCHEDULE_ACTIVE}")}
    paused = {p.name: p.paused for p in list_pauses(db) if p.kind == "queue"}
    return DatabaseSnapshot(at, totals, queues, int(dead), int(workers), lags,
                            read_backpressure(db), paused)


def waiting_queues(db: Database) -> list[str]:
    """Queues with waiting jobs: one index seek per queue, however many jobs wait."""
    names: set[str] = set()
    for index in (f"runner_job INDEXED BY runner_job_queue_claim WHERE {CLAIMABLE_WHERE}",
                  f"runner_job INDEXED BY runner_job_parked_queue WHERE {PARKED_WHERE}"):
        names.update(q for (q,) in db.query(
            f"WITH RECURSIVE q(name) AS (SELECT min(queue) FROM {index} UNION ALL "
            f"SELECT (SELECT min(queue) FROM {index} AND queue > q.name) FROM q "
            f"WHERE q.name IS NOT NULL) SELECT name FROM q WHERE name IS NOT NULL"))
    return sorted(names)
