"""The attempts a worker has started, kept in the database where every host can read them.

Just before an attempt runs, its job id and attempt number go into
``runner_attempt`` under the worker's id; the row goes once the outcome is
committed. A dead worker's recovery (on any host) then charges a crash only to
the attempts it had started: jobs claimed ahead of its threads go back
uncharged. The writes skip the wait for the disk (``synchronous_commit = off``):
a server crash may take the last few with it, and those jobs then go back
uncharged, as the outage and not they stopped the worker. A marker row
(empty job id) says the worker keeps a log at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import psycopg

from runner.store.job_rows import Ack, Failed
from runner.store.postgres.connection import PgDatabase

logger = logging.getLogger(__name__)

DDL = ["""CREATE TABLE IF NOT EXISTS runner_attempt (owner TEXT NOT NULL, job_id TEXT NOT NULL,
          attempt BIGINT NOT NULL, PRIMARY KEY (owner, job_id))"""]


_SETTLED_BATCH = 64


class AttemptLog:
    """One worker process's started attempts (see the module docstring)."""

    def __init__(self, db: PgDatabase, owner: str) -> None:
        self.db = db
        self.owner = owner
        self._lock = threading.Lock()
        # Starts noted while a write is in flight go in the next write, together.
        self._starts = threading.Condition()
        self._pending: dict[str, int] = {}
        self._next_write = 1
        self._written = 0
        self._writing = False
        self._conn: psycopg.Connection | None = None
        # Settled rows are dropped in batches: a leftover row names an attempt that is
        # no longer running, which recovery never looks at (it reads running jobs only).
        self._settled: list[str] = []
        self._run("INSERT INTO runner_attempt (owner, job_id, attempt) VALUES (%s, '', 0) "
                  "ON CONFLICT DO NOTHING", (owner,))

    def _run(self, sql: str, params: tuple) -> None:
        with self._lock:
            for _ in range(2):  # once more on a fresh connection if the old one was lost
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = self.db.connect()
                        self._conn.execute("SET synchronous_commit = off")
                    self._conn.execute(sql, params)
                    return
                except psycopg.OperationalError as exc:
                    logger.warning("%s: attempt log write failed (%s)", self.db.display, exc)
                    self._conn = None

    def started(self, job_id: str, attempt: int) -> None:
        """Note an attempt before it runs; returns once the row is written.

        Threads starting attempts while another's write is in flight wait for it,
        then one of them writes all their rows in one statement: one round trip
        per burst of starts instead of one per start.
        """
        with self._starts:
            self._pending[job_id] = attempt
            mine = self._next_write
            while not self._written >= mine:
                if not self._writing:
                    break
                self._starts.wait()
            else:
                return
            rows, self._pending = self._pending, {}
            self._next_write += 1
            self._writing = True
        try:
            self._run("INSERT INTO runner_attempt (owner, job_id, attempt) "
                      "SELECT %s, * FROM unnest(%s::text[], %s::bigint[]) "
                      "ON CONFLICT (owner, job_id) DO UPDATE SET attempt = excluded.attempt",
                      (self.owner, list(rows), list(rows.values())))
        finally:
            with self._starts:
                self._writing = False
                self._written = mine
                self._starts.notify_all()

    def settled(self, job_ids: Sequence[str]) -> None:
        with self._lock:
            self._settled.extend(job_ids)
            if len(self._settled) < _SETTLED_BATCH:
                return
            done, self._settled = self._settled, []
        self._run("DELETE FROM runner_attempt WHERE owner = %s AND job_id = ANY(%s)",
                  (self.owner, done))

    def keep_outcomes(self, acks: Sequence[Ack], failures: Sequence[Failed] = ()) -> bool:
        # The log lives in the same database the outcomes could not be written to.
        return False

    def close(self, *, remove: bool = True) -> None:
        with self._lock:
            done, self._settled = self._settled, []
        if remove:
            self._run("DELETE FROM runner_attempt WHERE owner = %s", (self.owner,))
        elif done:
            self._run("DELETE FROM runner_attempt WHERE owner = %s AND job_id = ANY(%s)",
                      (self.owner, done))
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def read_started(conn: psycopg.Connection,
                 owners: Sequence[str]) -> dict[str, set[tuple[str, int]]]:
    """The attempts each of ``owners`` had started; owners that kept no log are left out."""
    started: dict[str, set[tuple[str, int]]] = {}
    for owner, job_id, attempt in conn.execute(
            "SELECT owner, job_id, attempt FROM runner_attempt WHERE owner = ANY(%s)",
            (list(owners),)).fetchall():
        found = started.setdefault(owner, set())
        if job_id:
            found.add((job_id, attempt))
    return started


def forget(conn: psycopg.Connection, owners: Sequence[str]) -> None:
    """Drop the logs of workers whose jobs were recovered."""
    conn.execute("DELETE FROM runner_attempt WHERE owner = ANY(%s)", (list(owners),))
