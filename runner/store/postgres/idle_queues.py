"""PostgreSQL: the retention pass forgets the bookkeeping of idle queues.

A queue name leaves rows behind once used: its waiting count, up to one row per
shard (``runner_queue``), and, under queue shares, its round-robin turn
(``runner_flow``, ``turn:NAME``). Every claim adds up the count rows of every queue
to find those with waiting jobs, so names used once (a queue per tenant) made each
claim dearer for ever. Both go for each queue with no job waiting, scheduled or
running that the settings do not name.

Counts stay exact whatever runs beside: the count rows of a queue are locked
(``SKIP LOCKED``: a row a live transaction is changing is left for the next pass)
and deleted only when the locked rows add up to 0, so the sum over the rows left,
the count every reader takes, is the same before and after; a trigger adding to a
deleted shard makes its row again. Turns are deleted under the advisory lock that
claims under shares take first, so no such claim is halfway through them; a queue
used again takes its turns from 0, as a new one. The two deletes run in two
transactions: one holding count rows never waits for the turns' lock (which a claim
holds while its trigger may wait for a count row).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import psycopg

from runner.flow import turn_key
from runner.store.postgres.connection import PgDatabase, lock_key
from runner.store.states import EXECUTING_SQL, WAITING_SQL

_TURN = turn_key("")
#: The lock a claim under queue shares holds while it reads and writes the turns
#: (:func:`runner.store.postgres.limits.choose`).
_TURNS_LOCK = "runner flow turns"
#: Every queue name whose count adds up to 0, or with a turn: those that may be idle.
_NAMES = (f"SELECT queue FROM runner_queue GROUP BY queue HAVING sum(waiting) = 0 "
          f"UNION SELECT substr(key, {len(_TURN) + 1}) FROM runner_flow "
          f"WHERE left(key, {len(_TURN)}) = '{_TURN}'")
#: Of the names ``%(names)s``, those with no job waiting or running (index seeks).
_IDLE = (f"SELECT name FROM unnest(%(names)s::text[]) AS q(name) "
         f"WHERE name <> ALL(ARRAY(SELECT DISTINCT queue FROM runner_job "
         f"WHERE state = {EXECUTING_SQL})) AND NOT EXISTS (SELECT 1 FROM runner_job "
         f"WHERE queue = q.name AND state IN {WAITING_SQL})")
_FORGET_COUNTS = (
    f"WITH locked AS (SELECT queue, shard, waiting FROM runner_queue "
    f"WHERE queue IN ({_IDLE}) ORDER BY queue, shard FOR UPDATE SKIP LOCKED), "
    f"zero AS (SELECT queue FROM locked GROUP BY queue HAVING sum(waiting) = 0) "
    f"DELETE FROM runner_queue r USING locked l WHERE l.queue IN (SELECT queue FROM zero) "
    f"AND r.queue = l.queue AND r.shard = l.shard RETURNING r.queue")
_FORGET_TURNS = (f"DELETE FROM runner_flow WHERE key IN (SELECT '{_TURN}' || name "
                 f"FROM ({_IDLE}) idle) RETURNING substr(key, {len(_TURN) + 1})")


def forget_idle_queues(db: PgDatabase, keep: Collection[str], *, batch: int,
                       dry_run: bool = False) -> int:
    """Drop the count rows and turn of each idle queue not in ``keep``, ``batch`` names
    at a time; how many queues were forgotten (with ``dry_run``, would be)."""
    names = sorted({q for (q,) in db.query(_NAMES)} - set(keep))
    forgotten = 0
    for start in range(0, len(names), batch):
        part = {"names": names[start:start + batch]}
        if dry_run:
            forgotten += len(db.query(_IDLE, part))
            continue
        gone = {q for (q,) in db.write(lambda c, p=part: c.execute(_FORGET_COUNTS, p)
                                       .fetchall())}
        gone.update(db.write(lambda c, p=part: _forget_turns(c, p)))
        forgotten += len(gone)
    return forgotten


def _forget_turns(conn: psycopg.Connection, part: dict[str, Sequence[str]]) -> set[str]:
    conn.execute(f"SELECT pg_advisory_xact_lock({lock_key('%s')})", (_TURNS_LOCK,))
    return {q for (q,) in conn.execute(_FORGET_TURNS, part).fetchall()}
