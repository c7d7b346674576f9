"""Parked jobs in SQLite: parking, recording room, letting out.

What parking is, and why, is :mod:`runner.store.parking`'s. Here: a parked job
is in ``runner_job_parked`` (by task, group, queue, priority, due time: a group's
best job per queue and level is a seek) and ``runner_job_parked_queue`` (in the
order of ``runner_job_queue_claim``, for the readers of a queue's whole backlog),
never in the claim indexes. Writes are serialised by SQLite, so a claim that
parks and a job that finishes never pass each other unseen.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from runner.store.parking import MOST_SLOTS, TASK_GROUP
from runner.store.sqlite.backlog import QUEUE_PARKED
from runner.store.sqlite.conditions import PARKED_WHERE, waiting

#: Every transition that takes a job out of ``executing``, or a waiting job a claim could
#: take out of the waiting states without starting it (it may be the job let out for a
#: slot), records the room it may make (:func:`room_for`, :func:`room_everywhere`). No
#: trigger does it: each row a trigger sees costs its whole program's frame, WHEN or not,
#: and a trigger on the claim's and the completion's rows cost the drain about 2%. Every
#: transition that takes a job out of the waiting states without claiming it clears the
#: mark too (a claim never takes a parked job), so a parked job is always waiting, and
#: retry by hand and rearm clear it again, whatever an older file left.


def room_for(conn: sqlite3.Connection, job_ids: Sequence[str]) -> None:
    """A slot in the limits of these jobs, which just left ``executing`` (or the waiting
    states without starting), where they hold parked jobs: the key's group of a job with
    a concurrency key, else its task's (:func:`let_out` lets out both). One seek when
    nothing is parked."""
    if not job_ids or not conn.execute(_ANY_PARKED).fetchone()[0]:
        return
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start:start + 500]
        conn.execute(
            f"INSERT INTO runner_room (task, grp, slots) SELECT task, coalesce('k' || "
            f"concurrency_key, '{TASK_GROUP}') AS grp, count(*) FROM runner_job j "
            f"WHERE id IN ({','.join('?' * len(chunk))}) AND EXISTS (SELECT 1 FROM "
            f"runner_job INDEXED BY runner_job_parked WHERE {PARKED_WHERE} "
            f"AND task = j.task) GROUP BY task, grp "
            f"ON CONFLICT (task, grp) DO UPDATE SET slots = slots + excluded.slots", chunk)


def room_everywhere(conn: sqlite3.Connection) -> None:
    """A slot in every group that holds parked jobs (after a change of many jobs at once:
    a bulk action, a flush of the queue)."""
    if conn.execute(_ANY_PARKED).fetchone()[0]:
        conn.execute(
            f"INSERT INTO runner_room (task, grp, slots) SELECT DISTINCT task, parked, 1 "
            f"FROM runner_job INDEXED BY runner_job_parked WHERE {PARKED_WHERE} "
            f"ON CONFLICT (task, grp) DO UPDATE SET slots = slots + 1")


_ANY_PARKED = (f"SELECT EXISTS (SELECT 1 FROM runner_job INDEXED BY runner_job_parked "
               f"WHERE {PARKED_WHERE})")


def park(conn: sqlite3.Connection, parking: list[tuple[int | str, str, str]]) -> None:
    """Park the jobs (rowid, task, group) a claim passed over, and forget them."""
    if parking:
        conn.executemany(f"UPDATE runner_job SET parked = ? WHERE rowid = ? "
                         f"AND parked IS NULL AND {waiting()}",
                         [(group, rowid) for rowid, _, group in parking])
        parking.clear()


def let_out(conn: sqlite3.Connection) -> None:
    """For each slot recorded in ``runner_room``, let out the best parked job of each
    queue and level of priority of its group, and of its task's (a job of a key runs
    under both limits); a claim calls this first."""
    rooms = conn.execute("DELETE FROM runner_room RETURNING task, grp, slots").fetchall()
    for task, group, slots in rooms:
        for each in {group, TASK_GROUP}:
            _let_out_group(conn, task, each, min(max(1, slots), MOST_SLOTS))


_NEXT_SLICE = (f"SELECT queue, priority FROM runner_job INDEXED BY runner_job_parked "
               f"WHERE {PARKED_WHERE} AND task = ? AND parked = ? AND (queue, priority) > (?, ?) "
               f"ORDER BY queue, priority LIMIT 1")
_FIRST_SLICE = (f"SELECT queue, priority FROM runner_job INDEXED BY runner_job_parked "
                f"WHERE {PARKED_WHERE} AND task = ? AND parked = ? "
                f"ORDER BY queue, priority LIMIT 1")
_LET_OUT = (f"UPDATE runner_job SET parked = NULL WHERE rowid IN (SELECT rowid FROM runner_job "
            f"INDEXED BY runner_job_parked WHERE {PARKED_WHERE} AND task = ? AND parked = ? "
            f"AND queue = ? AND priority = ? ORDER BY run_at, rowid LIMIT ?)")


def _let_out_group(conn: sqlite3.Connection, task: str, group: str, slots: int) -> None:
    found = conn.execute(_FIRST_SLICE, (task, group)).fetchone()
    while found is not None:
        queue, priority = found
        conn.execute(_LET_OUT, (task, group, queue, priority, slots))
        found = conn.execute(_NEXT_SLICE, (task, group, queue, priority)).fetchone()


def release_all(conn: sqlite3.Connection) -> int:
    """Let out every parked job (a worker starts: its limits may have changed)."""
    conn.execute("DELETE FROM runner_room")
    return conn.execute(f"UPDATE runner_job SET parked = NULL WHERE rowid IN (SELECT rowid "
                        f"FROM runner_job INDEXED BY runner_job_parked WHERE {PARKED_WHERE})"
                        ).rowcount


def parked_count(conn: sqlite3.Connection, queues: Sequence[str] = ()) -> int:
    """Parked jobs (of ``queues``, or all)."""
    if not queues:
        return conn.execute(f"SELECT count(*) FROM runner_job INDEXED BY runner_job_parked "
                            f"WHERE {PARKED_WHERE}").fetchone()[0]
    return sum(conn.execute(f"SELECT count(*) FROM {QUEUE_PARKED}", (q,)).fetchone()[0]
               for q in queues)
