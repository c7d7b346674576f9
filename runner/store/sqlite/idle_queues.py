"""SQLite: the retention pass forgets the bookkeeping of idle queues.

A queue name leaves rows behind once used: its waiting count (the ``runner_job_total``
row of task ``''``, see :mod:`.counters`) and, under queue shares, its round-robin
turn (``runner_flow``, ``turn:NAME``). A claim under flow control reads every count
and every flow row, so names used once (a queue per tenant or per customer) made each
claim dearer for ever: 2,000 of them cost a weighted claim ~25,500 VM steps instead
of ~1,500. Both rows go for each queue with no job waiting, scheduled or running
that the settings do not name.

The check and the delete run in one write transaction, so no job can come or go in
between; a later write brings the rows back as for a new queue (the enqueue and the
triggers upsert the count, a claim's turn starts at 0). A count row is only deleted
at 0: deleting it then leaves every count as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence

from runner.flow import turn_key
from runner.store.sqlite.conditions import CLAIMABLE_WHERE, PARKED_WHERE
from runner.store.sqlite.counters import QUEUE_ROW
from runner.store.sqlite.db import Database
from runner.store.states import EXECUTING_SQL

_TURN = turn_key("")
#: The first key past every turn's (a range of the primary key holds the turns).
_PAST_TURNS = _TURN[:-1] + chr(ord(_TURN[-1]) + 1)
#: Every queue name with a count at 0 or a turn: those that may be idle.
_NAMES = (f"SELECT queue FROM runner_job_total WHERE task = '{QUEUE_ROW}' AND waiting = 0 "
          f"UNION SELECT substr(key, {len(_TURN) + 1}) FROM runner_flow "
          f"WHERE key >= '{_TURN}' AND key < '{_PAST_TURNS}'")
#: Queues with a job running (the lease index holds every running job, a few hundred).
_RUNNING = (f"SELECT DISTINCT queue FROM runner_job INDEXED BY runner_job_lease "
            f"WHERE state = {EXECUTING_SQL}")
#: Whether a queue holds a waiting job, claimable or parked (a seek of each index).
_WAITING = (f"SELECT EXISTS (SELECT 1 FROM runner_job INDEXED BY runner_job_queue_claim "
            f"WHERE queue = ?1 AND {CLAIMABLE_WHERE}) OR EXISTS (SELECT 1 FROM runner_job "
            f"INDEXED BY runner_job_parked_queue WHERE queue = ?1 AND {PARKED_WHERE})")


def forget_idle_queues(db: Database, keep: Collection[str], *, batch: int,
                       dry_run: bool = False) -> int:
    """Drop the count and turn of each idle queue not in ``keep``, ``batch`` names to a
    transaction; how many queues were forgotten (with ``dry_run``, would be)."""
    names = sorted({q for (q,) in db.query(_NAMES)} - set(keep))
    if dry_run:
        with db.read() as conn:
            return len(_idle(conn, names))
    forgotten = 0
    for start in range(0, len(names), batch):
        part = names[start:start + batch]
        forgotten += db.write(lambda conn, part=part: _forget(conn, part))
    return forgotten


def _idle(conn: sqlite3.Connection, names: Sequence[str]) -> list[str]:
    running = {q for (q,) in conn.execute(_RUNNING)}
    return [q for q in names
            if q not in running and not conn.execute(_WAITING, (q,)).fetchone()[0]]


def _forget(conn: sqlite3.Connection, names: Sequence[str]) -> int:
    idle = _idle(conn, names)
    conn.executemany("DELETE FROM runner_job_total WHERE task = ? AND queue = ? "
                     "AND waiting = 0", [(QUEUE_ROW, q) for q in idle])
    conn.executemany("DELETE FROM runner_flow WHERE key = ?", [(turn_key(q),) for q in idle])
    return len(idle)
