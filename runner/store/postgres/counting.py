"""Lifetime counters per task and queue (``runner_job_total``) in PostgreSQL's dialect.

The same table and meaning as :mod:`runner.store.counters`: each counter is
added to inside the transaction that makes the change it counts (``enqueued``
by the enqueue statement itself, see :mod:`runner.store.postgres.transitions`). Upserts go
in (task, queue) order so two writers never wait on each other's rows crosswise.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate

import psycopg

from runner.store.states import JobState
from runner.store.views import BUCKETS

#: Outcomes a writer may add with :func:`count_where`.
OUTCOMES = ("retried", JobState.DEAD.value, JobState.CANCELLED.value)
_BUCKET_COLUMNS = tuple(f"le{i}" for i in range(len(BUCKETS)))
#: The columns a completed attempt adds to: the count, the time taken, and each bucket.
COMPLETED_COLUMNS = (JobState.COMPLETED.value, "duration_sum", *_BUCKET_COLUMNS)


def add_to(columns: Sequence[str]) -> str:
    """The ``ON CONFLICT`` clause adding an insert's ``columns`` to the shard's row."""
    return ("ON CONFLICT (task, queue, shard) DO UPDATE SET "
            + ", ".join(f"{c} = runner_job_total.{c} + excluded.{c}" for c in columns))


def count_completions(conn: psycopg.Connection,
                      rows: Iterable[tuple[str, str, float | None, float]]) -> None:
    """Count completed attempts from (task, queue, started_at, finished_at) just written."""
    per: dict[tuple[str, str], list] = {}
    for task, queue, started, finished in rows:
        took = finished - started if started is not None and finished > started else 0.0
        row = per.get((task, queue))
        if row is None:
            row = per[(task, queue)] = [0, 0.0] + [0] * (len(BUCKETS) + 1)
        row[0] += 1
        row[1] += took
        row[2 + bisect_left(BUCKETS, took)] += 1
    if not per:
        return
    marks = ", ".join(["%s"] * (2 + len(COMPLETED_COLUMNS)))
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO runner_job_total (task, queue, {', '.join(COMPLETED_COLUMNS)}) "
            f"VALUES ({marks}) " + add_to(COMPLETED_COLUMNS),
            [(t, q, *row[:2], *accumulate(row[2:-1])) for (t, q), row in sorted(per.items())])


def count_where(conn: psycopg.Connection, outcome: str, where: str,
                params: Sequence[object] = ()) -> None:
    """Count the jobs matching ``where`` as ``outcome``, just before the update that gives it."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    conn.execute(
        f"INSERT INTO runner_job_total (task, queue, {outcome}) "
        f"SELECT task, queue, count(*) FROM runner_job WHERE {where} GROUP BY task, queue "
        f"ORDER BY task, queue {add_to([outcome])}", tuple(params))


def count_backpressure(conn: psycopg.Connection, queue: str, *, rejected: int = 0,
                       dropped: int = 0) -> None:
    """Add jobs refused by a full queue (``rejected``) or cancelled to make room (``dropped``)."""
    if rejected or dropped:
        conn.execute(
            "INSERT INTO runner_queue_total (queue, rejected, dropped) VALUES (%s,%s,%s) "
            "ON CONFLICT (queue) DO UPDATE SET "
            "rejected = runner_queue_total.rejected + excluded.rejected, "
            "dropped = runner_queue_total.dropped + excluded.dropped", (queue, rejected, dropped))
