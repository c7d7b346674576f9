"""Parked jobs in PostgreSQL: the column, index and triggers, parking and letting out.

What parking is, and why, is :mod:`runner.store.parking`'s. Here: a parked job is
in ``runner_job_parked`` (by task, group, queue, priority, due time: a group's best
job per queue and level is a seek), never in the claim indexes, whose condition
adds ``parked IS NULL``; reads of a whole backlog go through
``runner_job_queue_waiting``, which holds parked jobs too.

Claims and finishing jobs run side by side here, so a claim parks a group's jobs
only while it holds the group's running jobs ``FOR SHARE`` (skipping any row a
finishing transaction holds): a job of the group that finishes after the claim
looked then waits for the claim's commit, and its trigger sees the jobs parked
and records the room; one that finished before is not counted, and nothing is
parked.
"""

from __future__ import annotations

from collections import defaultdict

import psycopg

from runner.flow import FlowLimits
from runner.store.parking import MOST_SLOTS, TASK_GROUP
from runner.store.states import EXECUTING_SQL, WAITING, WAITING_SQL

_WAITING = [s.value for s in WAITING]

#: The column (added here: the claim indexes below name it) and the parked jobs' index.
COLUMN = "ALTER TABLE runner_job ADD COLUMN IF NOT EXISTS parked TEXT"
INDEXES = [
    """CREATE INDEX IF NOT EXISTS runner_job_parked ON runner_job
        (task, parked, queue, priority, run_at) WHERE parked IS NOT NULL""",
]

_ROOM = f"""
CREATE OR REPLACE FUNCTION runner_job_room() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM runner_job WHERE parked IS NOT NULL AND task = OLD.task
               AND parked = '{TASK_GROUP}') THEN
        INSERT INTO runner_room (task, grp, slots) VALUES (OLD.task, '{TASK_GROUP}', 1)
            ON CONFLICT (task, grp) DO UPDATE SET slots = runner_room.slots + 1;
    END IF;
    IF OLD.concurrency_key IS NOT NULL AND EXISTS (SELECT 1 FROM runner_job
            WHERE parked IS NOT NULL AND task = OLD.task
            AND parked = 'k' || OLD.concurrency_key) THEN
        INSERT INTO runner_room (task, grp, slots) VALUES (OLD.task, 'k' || OLD.concurrency_key, 1)
            ON CONFLICT (task, grp) DO UPDATE SET slots = runner_room.slots + 1;
    END IF;
    RETURN NULL;
END $$"""

_UNPARK = """
CREATE OR REPLACE FUNCTION runner_job_unpark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.parked := NULL;
    RETURN NEW;
END $$"""

#: A slot may open where a running job stops (whatever the path: outcome, cancel, lease
#: recovery, delete), or where a waiting job a claim could take goes without starting
#: (it may be the job let out for a slot). A parked job that leaves the waiting states is
#: parked no more (it may come back by hand, and no room would let it out).
TRIGGERS = [
    _ROOM,
    "DROP TRIGGER IF EXISTS runner_job_room_update ON runner_job",
    f"""CREATE TRIGGER runner_job_room_update AFTER UPDATE OF state ON runner_job FOR EACH ROW
        WHEN ((OLD.state = {EXECUTING_SQL} AND NEW.state <> {EXECUTING_SQL})
        OR (OLD.parked IS NULL AND OLD.state IN {WAITING_SQL}
            AND NEW.state NOT IN {WAITING_SQL} AND NEW.state <> {EXECUTING_SQL}))
        EXECUTE FUNCTION runner_job_room()""",
    "DROP TRIGGER IF EXISTS runner_job_room_delete ON runner_job",
    f"""CREATE TRIGGER runner_job_room_delete AFTER DELETE ON runner_job FOR EACH ROW
        WHEN (OLD.state = {EXECUTING_SQL} OR (OLD.parked IS NULL AND OLD.state IN {WAITING_SQL}))
        EXECUTE FUNCTION runner_job_room()""",
    _UNPARK,
    "DROP TRIGGER IF EXISTS runner_job_unpark_changed ON runner_job",
    f"""CREATE TRIGGER runner_job_unpark_changed BEFORE UPDATE OF state ON runner_job
        FOR EACH ROW WHEN (OLD.parked IS NOT NULL AND NEW.state NOT IN {WAITING_SQL})
        EXECUTE FUNCTION runner_job_unpark()""",
]


def park(conn: psycopg.Connection, parking: list[tuple[str, str, str]],
         limits: FlowLimits) -> None:
    """Park the jobs (id, task, group) a claim passed over, after it claimed its own: per
    group, only while its running jobs held ``FOR SHARE`` still fill its limit."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for job_id, task, group in parking:
        groups[(task, group)].append(job_id)
    parking.clear()
    for (task, group), ids in sorted(groups.items()):
        if group == TASK_GROUP:
            cap = limits.task_concurrency.get(task, 0)
            key_sql, params = "", [task]
        else:
            cap = limits.key_concurrency.get(task, 0)
            key_sql, params = " AND concurrency_key = %s", [task, group[1:]]
        (running,) = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM runner_job WHERE state = {EXECUTING_SQL} "
            f"AND task = %s{key_sql} FOR SHARE SKIP LOCKED) r", params).fetchone()
        if cap and running >= cap:
            conn.execute("UPDATE runner_job SET parked = %s WHERE id = ANY(%s) "
                         "AND parked IS NULL AND state = ANY(%s)", (group, ids, _WAITING))


_LET_OUT = (
    "UPDATE runner_job SET parked = NULL WHERE id IN (SELECT h.id FROM ("
    # Each (queue, priority) of the group, found by seeks (a loose scan of the index).
    "WITH RECURSIVE s(q, p) AS ((SELECT queue, priority FROM runner_job "
    "WHERE parked IS NOT NULL AND task = %(task)s AND parked = %(grp)s "
    "ORDER BY queue, priority LIMIT 1) UNION ALL SELECT n.queue, n.priority FROM s "
    "CROSS JOIN LATERAL (SELECT queue, priority FROM runner_job WHERE parked IS NOT NULL "
    "AND task = %(task)s AND parked = %(grp)s AND (queue, priority) > (s.q, s.p) "
    "ORDER BY queue, priority LIMIT 1) n) SELECT q, p FROM s) s CROSS JOIN LATERAL ("
    "SELECT id FROM runner_job WHERE parked IS NOT NULL AND task = %(task)s "
    "AND parked = %(grp)s AND queue = s.q AND priority = s.p "
    "ORDER BY run_at, seq LIMIT %(slots)s) h)")


def let_out(conn: psycopg.Connection) -> None:
    """For each slot recorded in ``runner_room``, let out the best parked job of each
    queue and level of priority of its group (a claim calls this first)."""
    rooms = conn.execute(
        "DELETE FROM runner_room WHERE (task, grp) IN (SELECT task, grp FROM runner_room "
        "ORDER BY task, grp FOR UPDATE SKIP LOCKED) RETURNING task, grp, slots").fetchall()
    for task, group, slots in rooms:
        conn.execute(_LET_OUT, {"task": task, "grp": group,
                                "slots": min(max(1, slots), MOST_SLOTS)})


def release_all(conn: psycopg.Connection) -> int:
    """Let out every parked job (a worker starts: its limits may have changed)."""
    conn.execute("DELETE FROM runner_room")
    return conn.execute("UPDATE runner_job SET parked = NULL WHERE parked IS NOT NULL").rowcount
