"""Reads of one queue's waiting jobs, through ``runner_job_queue_claim``.

That index orders a queue's waiting jobs by priority, then ``run_at``: the
count of a queue's backlog is a range of it, its oldest job is found level by
level of priority (one seek per level in use, not one per job), and the best
due jobs of some queues are the best of each queue's range, merged (read level
by level: see "due jobs, level by level" below). A read
over several queues never goes through the index of every queue's jobs
(``runner_job_claim``) while other queues hold jobs: it would read theirs too.
Jobs a concurrency limit parked (:mod:`runner.store.parking`) are in
``runner_job_parked_queue``, of the same shape: a read of the whole backlog reads
both, a claim the first only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from runner.store.sqlite.conditions import CLAIMABLE_WHERE, PARKED_WHERE

#: A queue's waiting jobs a claim may take, parked ones left out (the first parameter is
#: the queue).
QUEUE_WAITING = (f"runner_job INDEXED BY runner_job_queue_claim "
                 f"WHERE queue = ?1 AND {CLAIMABLE_WHERE}")


#: A queue's parked jobs (the first parameter is the queue), in the order of
#: ``runner_job_queue_claim``.
QUEUE_PARKED = (f"runner_job INDEXED BY runner_job_parked_queue "
                f"WHERE queue = ?1 AND {PARKED_WHERE}")


def _oldest(after: str, source: str = QUEUE_WAITING) -> str:
    return (f"WITH RECURSIVE level(p) AS (SELECT max(priority) FROM {source} "
            f"UNION ALL SELECT (SELECT max(priority) FROM {source} "
            f"AND priority < level.p) FROM level WHERE level.p IS NOT NULL) "
            f"SELECT min((SELECT min(run_at) FROM {source} AND priority = level.p"
            f"{after})) FROM level WHERE level.p IS NOT NULL")


#: The earliest ``run_at`` among a queue's waiting jobs, parked ones too: the oldest of
#: each level of priority, the levels found by seeks, so the cost follows the priorities
#: in use, never the backlog.
OLDEST_WAITING = (f"SELECT min(t) FROM (SELECT ({_oldest('')}) AS t "
                  f"UNION ALL SELECT ({_oldest('', QUEUE_PARKED)}))")
#: The earliest ``run_at`` after the second parameter among the jobs a claim may take (a
#: parked job was due when it was parked).
OLDEST_WAITING_AFTER = _oldest(" AND run_at > ?2")
#: The earliest and the latest ``run_at`` among a queue's claimable jobs, by seeks per
#: level (SQLite sorts a ``run_at`` that is not a number last: the latest shows it).
RUN_AT_EDGES = (
    f"WITH RECURSIVE level(p) AS (SELECT max(priority) FROM {QUEUE_WAITING} "
    f"UNION ALL SELECT (SELECT max(priority) FROM {QUEUE_WAITING} "
    f"AND priority < level.p) FROM level WHERE level.p IS NOT NULL) "
    f"SELECT min((SELECT min(run_at) FROM {QUEUE_WAITING} AND priority = level.p)), "
    f"max((SELECT max(run_at) FROM {QUEUE_WAITING} AND priority = level.p)) "
    f"FROM level WHERE level.p IS NOT NULL")


# -- due jobs, level by level ---------------------------------------------------------
#
# Jobs due later (delayed, retrying, scheduled) at a higher priority than the jobs due
# now come first in the claim indexes: a read of "the best due jobs" in index order
# passes over every one of them. So a claim reads the highest level of priority first
# (its due jobs are a range of the index: a seek), and only when that gives fewer jobs
# than it wants, each lower level in turn, found by seeks too.


def top_level(index: str, scope: str = "") -> str:
    """The condition "at the highest level of priority among the claimable jobs of
    ``scope``" (SQL over ``index``; its parameters are those of ``scope``)."""
    return (f"priority = (SELECT max(priority) FROM runner_job INDEXED BY {index} "
            f"WHERE {CLAIMABLE_WHERE}{scope})")


def levels_below(conn: sqlite3.Connection, index: str, scope: str, params: Sequence[object],
                 below: int | None) -> list[int]:
    """The levels of priority of the claimable jobs of ``scope`` below ``below`` (every
    level but the highest when None), best first: one seek each."""
    start = "" if below is None else " AND priority < ?"
    first = [] if below is None else [below]
    found = [p for (p,) in conn.execute(
        f"WITH RECURSIVE level(p) AS (SELECT (SELECT max(priority) FROM runner_job "
        f"INDEXED BY {index} WHERE {CLAIMABLE_WHERE}{scope}{start}) UNION ALL SELECT (SELECT "
        f"max(priority) FROM runner_job INDEXED BY {index} WHERE {CLAIMABLE_WHERE}{scope} "
        f"AND priority < level.p) FROM level WHERE level.p IS NOT NULL) "
        f"SELECT p FROM level WHERE p IS NOT NULL", (*params, *first, *params))]
    return found if below is not None else found[1:]


def due_at(index: str, scope: str = "", condition: str = "") -> str:
    """The rowids of the due jobs of one level of ``scope``, oldest first. Parameters:
    those of ``scope``, the level, the time due by, those of ``condition``, how many."""
    return (f"SELECT rowid FROM runner_job INDEXED BY {index} WHERE {CLAIMABLE_WHERE}{scope} "
            f"AND priority = ? AND run_at <= ?{condition} ORDER BY run_at LIMIT ?")


_QUEUE_INDEX, _QUEUE_SCOPE = "runner_job_queue_claim", " AND queue = ?"


def _queue_level(columns: str, priority: str, condition: str) -> str:
    """The due jobs of one queue at one level of priority, oldest first. Parameters: the
    queue, those of ``priority``, the time due by, those of ``condition``, how many."""
    return (f"SELECT {columns} FROM runner_job INDEXED BY {_QUEUE_INDEX} "
            f"WHERE {CLAIMABLE_WHERE}{_QUEUE_SCOPE} AND priority = {priority} AND run_at <= ?"
            f"{condition} ORDER BY run_at LIMIT ?")


#: A queue's highest level of priority among its claimable jobs (parameter: the queue).
_QUEUE_TOP = (f"(SELECT max(priority) FROM runner_job INDEXED BY {_QUEUE_INDEX} "
              f"WHERE {CLAIMABLE_WHERE}{_QUEUE_SCOPE})")


def due_top_select(wants: Mapping[str, int], now: float, condition: str = "",
                   params: Sequence[object] = (),
                   columns: str = "rowid") -> tuple[str, list[object]]:
    """(SQL, parameters) of one statement reading the due jobs at each queue's highest
    level of priority, oldest first, up to its number in ``wants`` (all above 0)."""
    top = _queue_level(columns, _QUEUE_TOP, condition)
    return (" UNION ALL ".join([f"SELECT * FROM ({top})"] * len(wants)),
            [part for q, n in wants.items() for part in (q, q, now, *params, n)])


def due_level_select(condition: str = "") -> str:
    """The rowids of a queue's due jobs at one level, oldest first. Parameters: the queue,
    the level, the time due by, those of ``condition``, how many."""
    return _queue_level("rowid", "?", condition)


def lower_levels(conn: sqlite3.Connection, queue: str, below: int | None) -> list[int]:
    """The levels of priority of ``queue``'s claimable jobs below ``below`` (all but the
    highest when None), best first."""
    return levels_below(conn, _QUEUE_INDEX, _QUEUE_SCOPE, (queue,), below)


def due_rows(conn: sqlite3.Connection, wants: Mapping[str, int], now: float,
             condition: str = "", params: Sequence[object] = ()) -> dict[str, list[tuple]]:
    """The best due jobs of each queue, up to its number in ``wants``, best first, as
    (rowid, priority, run_at, queue): each queue's highest level read in one statement,
    then the lower levels of a queue that gave fewer than it wants. ``condition`` is SQL
    over a queue's rows, with ``params``."""
    columns = "rowid, priority, run_at, queue"
    wanted = {q: n for q, n in wants.items() if n > 0}
    found: dict[str, list[tuple]] = {q: [] for q in wants}
    if not wanted:
        return found
    for row in conn.execute(*due_top_select(wanted, now, condition, params, columns)):
        found[row[3]].append(row)
    for queue, want in wanted.items():
        rows = found[queue]
        if len(rows) < want:
            for p in lower_levels(conn, queue, rows[0][1] if rows else None):
                rows += conn.execute(_queue_level(columns, "?", condition),
                                     (queue, p, now, *params, want - len(rows))).fetchall()
                if len(rows) >= want:
                    break
    return found


def best_due_rowids(conn: sqlite3.Connection, queues: Sequence[str], now: float, want: int,
                    condition: str = "") -> list[int]:
    """The rowids of the best ``want`` due jobs of ``queues``, best first: each queue's
    best (:func:`due_rows`), merged."""
    found = due_rows(conn, {q: want for q in queues}, now, condition)
    merged = sorted((r for rows in found.values() for r in rows), key=lambda r: (-r[1], r[2]))
    return [r[0] for r in merged[:want]]


def due_below_top(conn: sqlite3.Connection, queue: str, now: float, condition: str) -> bool:
    """Whether a job of ``queue`` below its highest level of priority is due by ``now``
    (and meets ``condition``): level by level, a seek each."""
    index, scope = "runner_job_queue_claim", " AND queue = ?"
    return any(conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM runner_job INDEXED BY {index} WHERE "
        f"{CLAIMABLE_WHERE}{scope} AND priority = ? AND run_at <= ?{condition})",
        (queue, level, now)).fetchone()[0]
        for level in levels_below(conn, index, scope, (queue,), None))
