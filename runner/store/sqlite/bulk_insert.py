"""The INSERT of new job rows, and the many-rows-per-statement form a batch takes.

A batch (``task.map()``, ``enqueue_many()``, an event's fan-out) used to run
the one-row statement through ``executemany``. Measured with callgrind over a
50,000-job ``map()``, two things cost more than SQLite's own insert:

* each run of a statement opens and closes a cursor on the table and each of
  its indexes: a statement of 64 rows opens them once (SQLite's instructions
  per row fall from 44,000 to 17,000);
* Python's ``sqlite3`` passes ``None`` and ``bytes`` values through its
  adapter lookup, which raises and formats an AttributeError inside for each
  one (about 3,000 instructions a value, more than SQLite spends on it).
  Columns that are NULL in every row of the batch are left out of the
  statement (they default to NULL), and the payload goes in as a
  ``bytearray``, a type the module binds directly (as a BLOB, the same).
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Sequence

from runner.store.job_rows import NewJob

_COLUMNS = ("id", "task", "queue", "priority", "state", "data", "args", "max_attempts",
            "run_at", "created_at")
#: Columns most jobs leave NULL.
_OPTIONAL = ("unique_key", "event_id", "schedule", "concurrency_key")

#: The one-row INSERT of a job, every column given.
INSERT_JOB = (f"INSERT INTO runner_job ({', '.join(_COLUMNS + _OPTIONAL)}) "
              f"VALUES ({','.join('?' * len(_COLUMNS + _OPTIONAL))})")

#: Rows per statement: 64 x 14 values stays under 999, SQLite's limit on variables
#: before 3.32.
ROWS_PER_INSERT = 64


@functools.cache
def _insert(count: int, optional: bool) -> str:
    """One INSERT of ``count`` rows, with or without the optional columns."""
    columns = _COLUMNS + _OPTIONAL if optional else _COLUMNS
    values = f"({','.join('?' * len(columns))})"
    return (f"INSERT INTO runner_job ({', '.join(columns)}) VALUES "
            + ",".join([values] * count))


def insert_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], created: float) -> None:
    """Insert new jobs (``scheduled`` when ``run_at`` is after ``created``, else
    ``available``), :data:`ROWS_PER_INSERT` rows per statement.

    The last rows of a batch go in statements of 32, 16, ..., 1 rows, so a
    connection caches at most 14 statements of this kind.
    """
    optional = any(j.unique_key is not None or j.event_id is not None
                   or j.schedule is not None or j.concurrency_key is not None for j in jobs)
    if optional:
        rows = [(j.id, j.task, j.queue, j.priority,
                 "scheduled" if j.run_at > created else "available", bytearray(j.data), j.args,
                 j.max_attempts, j.run_at, created, j.unique_key, j.event_id, j.schedule,
                 j.concurrency_key) for j in jobs]
    else:
        rows = [(j.id, j.task, j.queue, j.priority,
                 "scheduled" if j.run_at > created else "available", bytearray(j.data), j.args,
                 j.max_attempts, j.run_at, created) for j in jobs]
    chain = itertools.chain.from_iterable
    start, count, size = 0, len(rows), ROWS_PER_INSERT
    while start < count:
        while count - start < size:
            size //= 2
        sql = _insert(size, optional)
        while count - start >= size:
            conn.execute(sql, tuple(chain(rows[start:start + size])))
            start += size
