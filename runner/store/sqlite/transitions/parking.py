"""Parked jobs in SQLite: the index, the triggers that record room, parking and letting out.

What parking is, and why, is :mod:`runner.store.parking`'s. Here: a parked job
is in ``runner_job_parked`` (by task, group, queue, priority, due time: a group's
best job per queue and level is a seek) and ``runner_job_parked_queue`` (the
shape of ``runner_job_queue_claim``, for the readers of a queue's whole backlog),
never in the claim indexes. Writes are serialised by SQLite, so a claim that
parks and a job that finishes never pass each other unseen.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from runner.store.parking import MOST_SLOTS, TASK_GROUP
from runner.store.sqlite.conditions import waiting
from runner.store.states import EXECUTING_SQL

#: The condition of the parked jobs' indexes (a parked job is always waiting).
PARKED_WHERE = "parked IS NOT NULL"

#: A queue's parked jobs (the first parameter is the queue), in the order of
#: ``runner_job_queue_claim``.
QUEUE_PARKED = (f"runner_job INDEXED BY runner_job_parked_queue "
                f"WHERE queue = ?1 AND {PARKED_WHERE}")

INDEXES = [
    f"""CREATE INDEX IF NOT EXISTS runner_job_parked ON runner_job
        (task, parked, queue, priority, run_at) WHERE {PARKED_WHERE}""",
    f"""CREATE INDEX IF NOT EXISTS runner_job_parked_queue ON runner_job
        (queue, priority DESC, run_at, state) WHERE {PARKED_WHERE}""",
]


def _room(when: str) -> str:
    """Statements adding a slot to the groups of the OLD row that hold parked jobs, when
    ``when`` holds."""
    group = (f"INSERT INTO runner_room (task, grp, slots) SELECT OLD.task, {{g}}, 1 "
             f"WHERE {when} AND {{also}}EXISTS (SELECT 1 FROM runner_job WHERE {PARKED_WHERE} "
             f"AND task = OLD.task AND parked = {{g}}) "
             f"ON CONFLICT (task, grp) DO UPDATE SET slots = slots + 1;")
    return (group.format(g=f"'{TASK_GROUP}'", also="")
            + group.format(g="'k' || OLD.concurrency_key",
                           also="OLD.concurrency_key IS NOT NULL AND "))


#: Whether the task of the OLD row has parked jobs: one seek, in the WHEN of the triggers
#: below, so that a job finishing while none is parked (the drain) runs no statement.
_ANY_PARKED = (f"EXISTS (SELECT 1 FROM runner_job INDEXED BY runner_job_parked "
               f"WHERE {PARKED_WHERE} AND task = OLD.task)")
#: A slot may open where a running job stops (whatever the path: outcome, cancel, lease
#: recovery, delete), or where a waiting job a claim could take goes without starting (it
#: may be the job let out for a slot). Cheapest test first: a claim fails the first.
_STOPS = (f"NEW.state <> {EXECUTING_SQL} AND (OLD.state = {EXECUTING_SQL} "
          f"OR (OLD.parked IS NULL AND {waiting('OLD.state')} AND NOT {waiting('NEW.state')}))")

#: One trigger per statement kind (each row a trigger sees costs its WHEN): room as
#: above, and a parked job that leaves the waiting states is parked no more (it may come
#: back by hand, and no room would let it out).
TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS runner_job_parking AFTER UPDATE OF state ON runner_job
        WHEN OLD.parked IS NOT NULL OR ({_STOPS} AND {_ANY_PARKED})
        BEGIN {_room(_STOPS)}
        UPDATE runner_job SET parked = NULL WHERE rowid = NEW.rowid AND OLD.parked IS NOT NULL
            AND NOT {waiting('NEW.state')}; END""",
    f"""CREATE TRIGGER IF NOT EXISTS runner_job_room_delete AFTER DELETE ON runner_job
        WHEN (OLD.state = {EXECUTING_SQL} OR (OLD.parked IS NULL AND {waiting('OLD.state')}))
        AND {_ANY_PARKED}
        BEGIN {_room('1')} END""",
]


def park(conn: sqlite3.Connection, parking: list[tuple[int | str, str, str]]) -> None:
    """Park the jobs (rowid, task, group) a claim passed over, and forget them."""
    if parking:
        conn.executemany(f"UPDATE runner_job SET parked = ? WHERE rowid = ? "
                         f"AND parked IS NULL AND {waiting()}",
                         [(group, rowid) for rowid, _, group in parking])
        parking.clear()


def let_out(conn: sqlite3.Connection) -> None:
    """For each slot recorded in ``runner_room``, let out the best parked job of each
    queue and level of priority of its group (a claim calls this first)."""
    rooms = conn.execute("DELETE FROM runner_room RETURNING task, grp, slots").fetchall()
    for task, group, slots in rooms:
        _let_out_group(conn, task, group, min(max(1, slots), MOST_SLOTS))


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
