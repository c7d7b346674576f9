"""The intake: a single enqueue writes one row of a table without indexes; the next
other transaction on the file moves it into ``runner_job``.

At ``synchronous = FULL`` an enqueue's commit waits for an fsync of every page it
wrote. A job written into ``runner_job`` updates the table, its id index, both
claim indexes and its queue's counter: five B-trees, where a plain huey enqueue
updates two. A row of ``runner_intake`` updates one.

Every other write transaction on the file (a claim, an outcome, a cancel, a
bulk enqueue, an enqueue that must look at the jobs: a unique key, a full
queue) first moves the intake into ``runner_job`` (:func:`absorb`, run by
:meth:`runner.store.sqlite.db.Database.write`), and so does a read by a
process that may write (:meth:`Database.query`), so no statement on
``runner_job`` ever misses a job. The move is one ``INSERT ... SELECT`` in the
order the jobs were written, so the table's rowids stay in creation order (the
dashboard's pages and the bulk actions' snapshots rely on it). Jobs of queues of
unequal weights are moved queue by queue instead, each queue's in the order
written, as ``enqueue_many`` writes a batch: such queues are drained at their
own paces, and a queue's jobs interleaved with the others' would have each claim
write a page of the table for every few jobs, pages the other queues' claims
write again later (twice the pages per claim, measured by ``bench/claim_pages.py``).
The rowids still order the moves (a bulk action's snapshot is taken between
two), and the jobs within a queue; within one move, the dashboard's pages in
insertion order show the jobs queue by queue. The jobs are
counted as enqueued (and waiting) as they move. A read-only connection (the
dashboard) cannot move them: it asks a writer to
(:meth:`runner.store.sqlite.handle.SqliteHandle.absorb_intake`).

Only a job whose id this process made (``NewJob.fresh``), with no unique key,
event, schedule or concurrency key, goes through the intake: nothing needs to
be looked up for it. Its row is written by one statement, a transaction of its
own (:func:`insert`, :meth:`Database.write_one`), which also checks the queue's
bound against the queue's waiting count plus every job in the intake (an upper
bound: the rows of the intake are numbered without gaps); when that would not
fit, it writes nothing and the enqueue moves the intake and counts exactly.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Mapping

from runner.flow import unequal_weights
from runner.store.job_rows import NewJob
from runner.store.rows import JobRow
from runner.store.sqlite.counters import add_enqueued
from runner.store.sqlite.db import Database

logger = logging.getLogger(__name__)

_COLUMNS = ("id, task, queue, priority, state, data, args, max_attempts, run_at, "
            "created_at")
_WRITE = f"INSERT INTO runner_intake ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
_LAST = "SELECT max(seq) FROM runner_intake"
_FIRST = "SELECT min(seq) FROM runner_intake"
#: Every job of the intake counted at once: ``max(seq) - min(seq) + 1`` (no gaps), each
#: as its own subquery, which reads one end of the table (both in one would read it all).
_HELD = f"coalesce(({_LAST}) - ({_FIRST}) + 1, 0)"
#: The row only while the queue has room: else its id is NULL, and OR IGNORE skips a row
#: that breaks NOT NULL. (``INSERT ... SELECT ... WHERE`` would say it plainly, but a
#: SELECT reading the table it inserts into is run into a temporary table first: twice
#: the cost of the insert itself.)
_WRITE_IF_ROOM = (f"INSERT OR IGNORE INTO runner_intake ({_COLUMNS}) VALUES (CASE WHEN "
                  "coalesce((SELECT waiting FROM runner_queue WHERE queue = ?), 0) + "
                  f"{_HELD} < ? THEN ? END, ?,?,?,?,?,?,?,?,?)")
_MOVE = (f"INSERT OR IGNORE INTO runner_job ({_COLUMNS}) SELECT {_COLUMNS} FROM "
         "runner_intake WHERE seq <= ? ORDER BY seq")
#: Queue by queue (by name, as ``enqueue_many`` groups a batch), each in the order written.
_MOVE_GROUPED = _MOVE.replace("ORDER BY seq", "ORDER BY queue, seq")
_COUNT = "SELECT task, queue, count(*) FROM runner_intake WHERE seq <= ? GROUP BY task, queue"
_CLEAR = "DELETE FROM runner_intake WHERE seq <= ?"

_STORED = set(_COLUMNS.split(", "))
_COUNTED = {"attempt", "crashes", "failures", "requested"}
#: A job row (:class:`JobRow`'s columns) of a job still in the intake.
_AS_JOB = ", ".join(name if name in _STORED else "0" if name in _COUNTED else "NULL"
                    for name in JobRow.__dataclass_fields__)


def find(db: Database, job_id: str) -> tuple | None:
    """The job row of ``job_id`` (whole) while it waits in the intake: for a read that
    could not move the intake first (another process held the write lock)."""
    try:
        rows = db.query(f"SELECT {_AS_JOB} FROM runner_intake WHERE id = ?", (job_id,))
    except sqlite3.OperationalError as exc:
        if _no_table(exc):
            return None
        raise
    return rows[0] if rows else None


def insert(job: NewJob, created: float, max_size: int = 0) -> tuple[str, tuple] | None:
    """The statement, and its parameters, of the job's row in the intake (``scheduled``
    when due after ``created``), for a transaction of its own; None for a job that may
    not go there (see the module docstring).

    With ``max_size`` (its queue's bound; 0: none) it writes nothing unless the job
    surely fits: the queue's waiting count plus every job of the intake (see the
    module docstring) is below the bound. The count is read by the statement that
    writes, under the same lock, so concurrent producers cannot both take the last place.
    """
    if not job.fresh or job.unique_key is not None or job.event_id is not None or (
            job.schedule is not None or job.concurrency_key is not None):
        return None
    row = (job.id, job.task, job.queue, job.priority,
           "scheduled" if job.run_at > created else "available", job.data, job.args,
           job.max_attempts, job.run_at, created)
    if not max_size:
        return _WRITE, row
    return _WRITE_IF_ROOM, (job.queue, max_size, *row)


def absorb(conn: sqlite3.Connection, weights: Mapping[str, int] | None = None) -> int:
    """Move every job of the intake into ``runner_job`` in the order they were written,
    counted as enqueued; inside the caller's write transaction. Returns how many moved.

    Jobs of queues of unequal ``weights`` (the settings') are moved queue by queue,
    each queue's in the order written (see the module docstring).

    A file without the table (an older schema, before its upgrade) has nothing to move.
    """
    try:
        (last,) = conn.execute(_LAST).fetchone()
    except sqlite3.OperationalError as exc:
        if _no_table(exc):
            return 0
        raise
    if last is None:
        return 0
    counts = Counter({(task, queue): n for task, queue, n in conn.execute(_COUNT, (last,))})
    grouped = unequal_weights({queue for _, queue in counts}, weights or {})
    moved = conn.execute(_MOVE_GROUPED if grouped else _MOVE, (last,)).rowcount
    conn.execute(_CLEAR, (last,))
    add_enqueued(conn, counts)
    if moved != sum(counts.values()):
        # Never expected (only ids made for the job come here); were one to come, failing
        # here would fail every later transaction on the file, claims included.
        logger.error("%d job(s) of the intake had the id of a job already written: not "
                     "written again", sum(counts.values()) - moved)
    return moved


def waiting(conn: sqlite3.Connection) -> bool:
    """Whether the intake holds a job (False for a file without the table)."""
    try:
        return conn.execute(_LAST).fetchone()[0] is not None
    except sqlite3.OperationalError as exc:
        if _no_table(exc):
            return False
        raise


def _no_table(exc: sqlite3.OperationalError) -> bool:
    """A file of an older schema (read-only, or before its upgrade) has no intake."""
    return "no such table" in str(exc)

