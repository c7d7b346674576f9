"""The parts of huey's Storage interface that are not the queue itself.

huey keeps results, revocations, locks and counters in a key/value store, and
asks the storage about queue sizes for introspection. Here the key/value store
is ``runner_kv`` and the queue is ``runner_job``; :class:`~runner.store.job_storage.JobStorage`
adds claiming and outcomes on top.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from huey.constants import EmptyData
from huey.storage import BaseStorage

from runner.store.counters import count_where
from runner.store.db import Database
from runner.store.models import WAITING_SQL


class KeyValueStore(BaseStorage):
    """Key/value and introspection methods huey calls; needs ``self.db``."""

    db: Database
    #: Whether any revocation may exist: refreshed at every claim, set by every revoke.
    #: Only the revocation check of a job this process just claimed may skip reading
    #: when it is False (see RunnerHuey.is_revoked); every other read goes to the table.
    _revocations: bool = True

    def enqueue(self, data: bytes, priority: int | None = None) -> None:
        raise NotImplementedError("jobs are written through RunnerHuey.enqueue")

    def dequeue(self) -> bytes | None:
        raise NotImplementedError("jobs are claimed through RunnerHuey.dequeue")

    # A job waits in the queue (pending) once it is due, and in the schedule until
    # then: a delayed job and a retry waiting out its delay are both "scheduled".
    def queue_size(self) -> int:
        return self.db.query(
            f"SELECT count(*) FROM runner_job INDEXED BY runner_job_claim "
            f"WHERE state IN {WAITING_SQL} AND run_at <= ?", (time.time(),))[0][0]

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        rows = self.db.query(
            f"SELECT data FROM runner_job INDEXED BY runner_job_claim WHERE state IN {WAITING_SQL} "
            "AND run_at <= ? ORDER BY priority DESC, run_at LIMIT ?", (time.time(), limit or -1))
        return [r[0] for r in rows]

    def flush_queue(self) -> None:
        now = time.time()
        self.db.write(lambda c: _cancel_where(
            c, f"state IN {WAITING_SQL} AND run_at <= ?", (now,), "queue flushed", now))

    def add_to_schedule(self, data: bytes, ts: object) -> None:
        raise NotImplementedError("scheduled jobs are rows with a future run_at")

    def read_schedule(self, ts: object) -> list[bytes]:
        return []  # due jobs are claimed straight from runner_job

    def schedule_size(self) -> int:
        return self.db.query(
            f"SELECT count(*) FROM runner_job INDEXED BY runner_job_claim "
            f"WHERE state IN {WAITING_SQL} AND run_at > ?", (time.time(),))[0][0]

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        rows = self.db.query(
            f"SELECT data FROM runner_job WHERE state IN {WAITING_SQL} AND run_at > ? "
            "ORDER BY run_at LIMIT ?", (time.time(), limit or -1))
        return [r[0] for r in rows]

    def flush_schedule(self) -> None:
        now = time.time()
        self.db.write(lambda c: _cancel_where(
            c, f"state IN {WAITING_SQL} AND run_at > ?", (now,), "schedule flushed", now))

    # Keys written with a TTL (huey's lock_task(ttl=...)) are gone once expired, for
    # every read; put_if_empty() deletes the expired row when it takes the key over.
    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        if _is_revocation(key):
            self._revocations = True
        self.db.write(lambda c: c.execute(
            "INSERT OR REPLACE INTO runner_kv (key, value) VALUES (?, ?)", (key, value)))

    def peek_data(self, key: str) -> bytes | object:
        rows = self.db.query(f"SELECT value FROM runner_kv WHERE key=?{_LIVE}",
                             (key, time.time()))
        return rows[0][0] if rows else EmptyData

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        return dict(self.db.query(
            f"SELECT key, value FROM runner_kv WHERE key IN ({','.join('?' * len(keys))})"
            f"{_LIVE}", (*keys, time.time())))

    def pop_data(self, key: str) -> bytes | object:
        if not self.db.query("SELECT 1 FROM runner_kv WHERE key=?", (key,)):
            return EmptyData
        now = time.time()
        rows = self.db.write(lambda c: c.execute(
            "DELETE FROM runner_kv WHERE key=? RETURNING value, expires_at", (key,)).fetchall())
        return rows[0][0] if rows and (rows[0][1] is None or rows[0][1] >= now) else EmptyData

    def wait_result(self, key: str, timeout: float | None = None, backoff: float = 1.15,
                    max_delay: float = 1.0) -> bool:
        # huey starts polling at 50 ms; a local result is usually there in a few.
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.002
        while True:
            if self.has_data_for_key(key):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(min(delay, max_delay))
            delay *= backoff

    def has_data_for_key(self, key: str) -> bool:
        return bool(self.db.query(f"SELECT 1 FROM runner_kv WHERE key=?{_LIVE}",
                                  (key, time.time())))

    def delete_data(self, key: str) -> bool:
        """Delete a key; True when it held a live (unexpired) value."""
        if not self.db.query("SELECT 1 FROM runner_kv WHERE key=?", (key,)):
            return False
        now = time.time()
        rows = self.db.write(lambda c: c.execute(
            "DELETE FROM runner_kv WHERE key=? RETURNING expires_at", (key,)).fetchall())
        return bool(rows) and (rows[0][0] is None or rows[0][0] >= now)

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        now = time.time()

        def put(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM runner_kv WHERE key=? AND expires_at < ?", (key, now))
            cur = conn.execute(
                "INSERT OR IGNORE INTO runner_kv (key, value, expires_at) VALUES (?, ?, ?)",
                (key, value, now + ttl if ttl else None))
            return cur.rowcount == 1

        return self.db.write(put)

    def incr(self, key: str, amount: int = 1) -> int:
        return self.db.write(lambda c: c.execute(
            "INSERT INTO runner_counter (key, value) VALUES (?, ?) ON CONFLICT (key) "
            "DO UPDATE SET value = value + excluded.value RETURNING value",
            (key, amount)).fetchone()[0])

    def delete_counter(self, key: str) -> None:
        self.db.write(lambda c: c.execute("DELETE FROM runner_counter WHERE key=?", (key,)))

    def result_store_size(self) -> int:
        return self.db.query("SELECT count(*) FROM runner_kv")[0][0]

    def result_items(self) -> dict[str, bytes]:
        return dict(self.db.query("SELECT key, value FROM runner_kv"))

    def flush_results(self) -> None:
        self.db.write(lambda c: c.execute("DELETE FROM runner_kv"))

    def flush_counters(self) -> None:
        self.db.write(lambda c: c.execute("DELETE FROM runner_counter"))



#: Appended to a ``WHERE key ...`` clause; its parameter is the current time.
_LIVE = " AND (expires_at IS NULL OR expires_at >= ?)"


def _is_revocation(key: str) -> bool:
    return key.startswith(("r:", "rt:"))


def _cancel_where(conn: sqlite3.Connection, where: str, params: tuple, reason: str,
                  now: float) -> None:
    count_where(conn, "cancelled", where, params)
    conn.execute(f"UPDATE runner_job SET state='cancelled', reason=?, finished_at=? WHERE {where}",
                 (reason, now, *params))
