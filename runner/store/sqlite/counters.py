"""Lifetime job counters per task and queue, kept in the jobs database.

``runner_job_total`` holds one row per (task, queue): jobs enqueued, completed,
retried, dead and cancelled, failed attempts, and a histogram of the processing
time of completed jobs. Its values only grow: pruning old jobs, restarting a
worker or a window passing never lowers them, so Prometheus can ``rate()`` them.

Each counter is added to inside the transaction that makes the change it
counts, by one statement per batch (the writers call the functions below);
a rolled back change is never counted. Failed attempts are counted by a
trigger on ``runner_job_error``, which every failure path writes to.

The jobs waiting now (available, scheduled or retrying) in each queue, which a
queue bound reads instead of counting the backlog, are kept in the same table:
``waiting`` of the queue's row whose task is :data:`QUEUE_ROW` (''). An enqueue
adds to it in the statement that counts ``enqueued`` (one upsert per batch,
usually on the same page; a trigger per inserted row would cost more than the
insert), and triggers on ``runner_job`` keep it exact through every later move
into or out of a waiting state, whatever writes it. ``runner_queue`` is a view
of those rows.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import accumulate
from typing import Protocol

from runner.store.sqlite.conditions import WAITING_WHERE, not_waiting, waiting
from runner.store.sqlite.db import Database
from runner.store.states import COMPLETED_SQL, JobState
from runner.store.views import BUCKETS, TaskTotals  # noqa: F401 - re-exported

_BUCKET_COLUMNS = tuple(f"le{i}" for i in range(len(BUCKETS)))
TOTALS = ("enqueued", JobState.COMPLETED.value, "failed", "retried", JobState.DEAD.value,
          JobState.CANCELLED.value)
"""Counter columns: what happened to jobs (``failed`` counts attempts)."""
#: Outcomes a writer may add with :func:`count_where`.
OUTCOMES = ("retried", JobState.DEAD.value, JobState.CANCELLED.value)

#: The task of a queue's row of waiting jobs (no task is named '').
QUEUE_ROW = ""

#: The table is the model runner.store.tables.JobTotal; these triggers (SQLite's dialect)
#: count each failed attempt inside the statement that records it, and keep ``waiting``.
TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS runner_job_error_counted AFTER INSERT ON runner_job_error
        BEGIN
        INSERT INTO runner_job_total (task, queue, failed)
        SELECT task, queue, 1 FROM runner_job WHERE id = new.job_id
        ON CONFLICT (task, queue) DO UPDATE SET failed = failed + 1;
        END""",
    # ``waiting`` after the enqueue: a job leaving a waiting state (claimed, cancelled,
    # deleted) or entering one (retried, handed back, run again), or changing queue.
    # ``UPDATE OF`` keeps them off updates of other columns.
    f"""CREATE TRIGGER IF NOT EXISTS runner_job_waiting_delete AFTER DELETE ON runner_job
        WHEN {waiting('OLD.state')} BEGIN
        UPDATE runner_job_total SET waiting = waiting - 1
            WHERE task = '{QUEUE_ROW}' AND queue = OLD.queue; END""",
    f"""CREATE TRIGGER IF NOT EXISTS runner_job_waiting_leave AFTER UPDATE OF state, queue
        ON runner_job WHEN {waiting('OLD.state')}
        AND ({not_waiting('NEW.state')} OR NEW.queue IS NOT OLD.queue) BEGIN
        UPDATE runner_job_total SET waiting = waiting - 1
            WHERE task = '{QUEUE_ROW}' AND queue = OLD.queue; END""",
    f"""CREATE TRIGGER IF NOT EXISTS runner_job_waiting_enter AFTER UPDATE OF state, queue
        ON runner_job WHEN {waiting('NEW.state')}
        AND ({not_waiting('OLD.state')} OR NEW.queue IS NOT OLD.queue) BEGIN
        INSERT INTO runner_job_total (task, queue, waiting)
            VALUES ('{QUEUE_ROW}', NEW.queue, 1)
            ON CONFLICT (task, queue) DO UPDATE SET waiting = waiting + 1; END""",
    # Waiting jobs per queue, as the queue bound and the readers of queue depth see them.
    f"""CREATE VIEW IF NOT EXISTS runner_queue AS
        SELECT queue, waiting FROM runner_job_total WHERE task = '{QUEUE_ROW}'""",
]


def _add(columns: Sequence[str]) -> str:
    return ("ON CONFLICT (task, queue) DO UPDATE SET "
            + ", ".join(f"{c} = {c} + excluded.{c}" for c in columns))


class _Job(Protocol):
    task: str
    queue: str


_ADD_ENQUEUED = ("INSERT INTO runner_job_total (task, queue, enqueued, waiting) "
                 "VALUES (?,?,?,?) " + _add(["enqueued", "waiting"]))
#: One job: its task's row and its queue's row in one statement.
_ADD_ONE = ("INSERT INTO runner_job_total (task, queue, enqueued, waiting) "
            "VALUES (?,?,1,0), (?,?,0,1) " + _add(["enqueued", "waiting"]))


def count_enqueued(conn: sqlite3.Connection, jobs: Sequence[_Job]) -> None:
    """Add new jobs, all waiting, to their task's ``enqueued`` and their queue's ``waiting``.

    Call it with the insert of the jobs, in the same transaction: no trigger counts them.
    """
    if len(jobs) == 1:
        conn.execute(_ADD_ONE, (jobs[0].task, jobs[0].queue, QUEUE_ROW, jobs[0].queue))
    elif jobs:
        per = Counter((j.task, j.queue) for j in jobs)
        queues = Counter(j.queue for j in jobs)
        conn.executemany(_ADD_ENQUEUED, [*((t, q, n, 0) for (t, q), n in per.items()),
                                         *((QUEUE_ROW, q, 0, n) for q, n in queues.items())])


def add_enqueued(conn: sqlite3.Connection, per: Mapping[tuple[str, str], int]) -> None:
    """Add jobs counted per (task, queue), all waiting, as :func:`count_enqueued` does."""
    queues: Counter[str] = Counter()
    for (_, queue), n in per.items():
        queues[queue] += n
    if queues:
        conn.executemany(_ADD_ENQUEUED, [*((t, q, n, 0) for (t, q), n in per.items()),
                                         *((QUEUE_ROW, q, 0, n) for q, n in queues.items())])


def recount_waiting(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """Set every queue's ``waiting`` from the jobs themselves (a migration, upkeep, rows
    written by hand). Returns the queues whose count was wrong: queue -> (kept, counted).

    The jobs are counted in ``runner_job_queue_claim`` alone (no row read), where it
    exists: a migration runs this before the indexes are made. A count
    below the truth hides a queue's jobs from a claim under flow control, and the
    triggers cannot see a job a process of an older release writes without them.
    """
    kept = dict(conn.execute("SELECT queue, waiting FROM runner_job_total WHERE task = ?",
                             (QUEUE_ROW,)).fetchall())
    counted = dict(conn.execute(
        f"SELECT queue, count(*) FROM runner_job WHERE {WAITING_WHERE} "
        f"GROUP BY queue").fetchall())
    wrong = {q: (kept.get(q, 0), counted.get(q, 0)) for q in sorted(kept.keys() | counted)
             if kept.get(q, 0) != counted.get(q, 0)}
    if wrong:
        conn.executemany(
            "INSERT INTO runner_job_total (task, queue, waiting) VALUES (?, ?, ?) "
            "ON CONFLICT (task, queue) DO UPDATE SET waiting = excluded.waiting",
            [(QUEUE_ROW, q, n) for q, (_, n) in wrong.items()])
    return wrong


_COMPLETED_COLUMNS = (JobState.COMPLETED.value, "duration_sum", *_BUCKET_COLUMNS)
_ADD_COMPLETED = (f"INSERT INTO runner_job_total (task, queue, {', '.join(_COMPLETED_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * (2 + len(_COMPLETED_COLUMNS)))}) "
                  + _add(_COMPLETED_COLUMNS))


class _Done(Protocol):
    job_id: str
    started_at: float | None
    finished_at: float


def count_completions(conn: sqlite3.Connection, acks: Sequence[_Done],
                      labels: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Count completed attempts just written.

    Call it right after the update that moved them to ``completed``, in the same
    transaction. ``labels`` (job id -> (task, queue), known from the claim) is
    passed when that update changed every row in ``acks``: the counts are then
    added up here and written in one upsert per task and queue. Without it, a
    read of the rows counts those this very write completed.
    """
    if not acks:
        return
    # Per task and queue: [completed, seconds, jobs in each bucket (not yet cumulative)]
    per: dict[tuple[str, str], list] = {}
    unknown = []
    for ack in acks:
        started, finished = ack.started_at, ack.finished_at
        label = labels.get(ack.job_id) if labels is not None else None
        if label is None or started is None:
            unknown.append(ack)
            continue
        took = finished - started if finished > started else 0.0
        row = per.get(label)
        if row is None:
            row = per[label] = [0, 0.0] + [0] * (len(BUCKETS) + 1)
        row[0] += 1
        row[1] += took
        row[2 + bisect_left(BUCKETS, took)] += 1
    if per:
        conn.executemany(_ADD_COMPLETED, [(t, q, *row[:2], *accumulate(row[2:-1]))
                                          for (t, q), row in per.items()])
    if unknown:
        _count_written(conn, unknown)


def _count_written(conn: sqlite3.Connection, acks: Sequence[_Done]) -> None:
    """Count the acks whose row this write completed: same id, same finish time.

    ``+j.state`` keeps SQLite on the primary key rather than a state index.
    """
    finished = {ack.job_id: ack.finished_at for ack in acks}
    duration = "max(0.0, j.finished_at - coalesce(j.started_at, j.finished_at))"
    buckets = ", ".join(f"sum(d <= {le!r})" for le in BUCKETS)
    conn.execute(
        f"INSERT INTO runner_job_total (task, queue, {', '.join(_COMPLETED_COLUMNS)}) "
        f"SELECT task, queue, count(*), sum(d), {buckets} FROM ("
        f"SELECT j.task, j.queue, {duration} AS d "
        f"FROM (VALUES {', '.join(['(?,?)'] * len(finished))}) AS v "
        f"JOIN runner_job j ON j.id = v.column1 "
        f"WHERE +j.state = {COMPLETED_SQL} AND j.finished_at = v.column2) "
        f"GROUP BY task, queue " + _add(_COMPLETED_COLUMNS),
        [x for item in finished.items() for x in item])


def count_where(conn: sqlite3.Connection, outcome: str, where: str,
                params: Sequence[object] = ()) -> None:
    """Count the jobs matching ``where`` as ``outcome`` (retried, dead or cancelled).

    Call it just before the update that gives them that outcome, with the same
    condition, in the same transaction.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    conn.execute(
        f"INSERT INTO runner_job_total (task, queue, {outcome}) "
        f"SELECT task, queue, count(*) FROM runner_job WHERE {where} GROUP BY task, queue "
        f"{_add([outcome])}", tuple(params))


def count_backpressure(conn: sqlite3.Connection, queue: str, *, rejected: int = 0,
                       dropped: int = 0) -> None:
    """Add jobs refused by a full queue (``rejected``) or cancelled to make room (``dropped``)."""
    if rejected or dropped:
        conn.execute(
            "INSERT INTO runner_queue_total (queue, rejected, dropped) VALUES (?,?,?) "
            "ON CONFLICT (queue) DO UPDATE SET rejected = rejected + excluded.rejected, "
            "dropped = dropped + excluded.dropped", (queue, rejected, dropped))


def read_backpressure(db: Database) -> dict[str, tuple[int, int]]:
    """Per queue: (jobs rejected, jobs dropped) since the database was created."""
    if not db.query("SELECT 1 FROM sqlite_master WHERE type='table' "
                    "AND name='runner_queue_total'"):
        return {}  # a file no current worker has opened yet
    return {q: (int(r), int(d)) for q, r, d in db.query(
        "SELECT queue, rejected, dropped FROM runner_queue_total ORDER BY queue")}


def read_totals(db: Database) -> list[TaskTotals]:
    """Every (task, queue)'s counters: one read of a table as small as the task list."""
    rows = db.query(f"SELECT task, queue, {', '.join(TOTALS)}, duration_sum, "
                    f"{', '.join(_BUCKET_COLUMNS)} FROM runner_job_total WHERE task != ? "
                    "ORDER BY task, queue", (QUEUE_ROW,))
    n = len(TOTALS)
    return [TaskTotals(r[0], r[1], *(int(v) for v in r[2:2 + n]), float(r[2 + n]),
                       tuple(int(v) for v in r[3 + n:])) for r in rows]
