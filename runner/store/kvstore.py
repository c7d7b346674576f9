"""The parts of huey's Storage interface that are not the queue itself.

huey keeps results, revocations, locks and counters in a key/value store, and
asks the storage about queue sizes for introspection. Here the key/value store
is ``runner_kv`` and the queue is ``runner_job``; :class:`~runner.storage.JobStorage`
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
    #: Whether any revocation may exist; JobStorage refreshes it at every claim.
    _revocations: bool = True

    def enqueue(self, data: bytes, priority: int | None = None) -> None:
        raise NotImplementedError("jobs are written through RunnerHuey.enqueue")

    def dequeue(self) -> bytes | None:
        raise NotImplementedError("jobs are claimed through RunnerHuey.dequeue")

    def queue_size(self) -> int:
        return self.db.query(f"SELECT count(*) FROM runner_job WHERE state IN {WAITING_SQL}")[0][0]

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        rows = self.db.query(
            f"SELECT data FROM runner_job INDEXED BY runner_job_claim WHERE state IN {WAITING_SQL} "
            "ORDER BY priority DESC, run_at LIMIT ?", (limit or -1,))
        return [r[0] for r in rows]

    def flush_queue(self) -> None:
        self.db.write(lambda c: _cancel_where(c, f"state IN {WAITING_SQL}", "queue flushed"))

    def add_to_schedule(self, data: bytes, ts: object) -> None:
        raise NotImplementedError("scheduled jobs are rows with a future run_at")

    def read_schedule(self, ts: object) -> list[bytes]:
        return []  # due jobs are claimed straight from runner_job

    def schedule_size(self) -> int:
        return self.db.query("SELECT count(*) FROM runner_job WHERE state='scheduled'")[0][0]

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        rows = self.db.query("SELECT data FROM runner_job WHERE state='scheduled' "
                             "ORDER BY run_at LIMIT ?", (limit or -1,))
        return [r[0] for r in rows]

    def flush_schedule(self) -> None:
        self.db.write(lambda c: _cancel_where(c, "state='scheduled'", "schedule flushed"))

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        self.db.write(lambda c: c.execute(
            "INSERT OR REPLACE INTO runner_kv (key, value) VALUES (?, ?)", (key, value)))

    def peek_data(self, key: str) -> bytes | object:
        rows = self.db.query("SELECT value FROM runner_kv WHERE key=?", (key,))
        return rows[0][0] if rows else EmptyData

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys or (not self._revocations and all(_is_revocation(k) for k in keys)):
            return {}
        return dict(self.db.query(
            f"SELECT key, value FROM runner_kv WHERE key IN ({','.join('?' * len(keys))})",
            tuple(keys)))

    def pop_data(self, key: str) -> bytes | object:
        if not self.db.query("SELECT 1 FROM runner_kv WHERE key=?", (key,)):
            return EmptyData
        rows = self.db.write(lambda c: c.execute(
            "DELETE FROM runner_kv WHERE key=? RETURNING value", (key,)).fetchall())
        return rows[0][0] if rows else EmptyData

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
        return bool(self.db.query("SELECT 1 FROM runner_kv WHERE key=?", (key,)))

    def delete_data(self, key: str) -> bool:
        if not self._revocations and _is_revocation(key):
            return False
        if not self.db.query("SELECT 1 FROM runner_kv WHERE key=?", (key,)):
            return False
        return self.db.write(lambda c: c.execute(
            "DELETE FROM runner_kv WHERE key=?", (key,)).rowcount) == 1

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



def _is_revocation(key: str) -> bool:
    return key.startswith(("r:", "rt:"))


def _cancel_where(conn: sqlite3.Connection, where: str, reason: str) -> None:
    count_where(conn, "cancelled", where)
    conn.execute(f"UPDATE runner_job SET state='cancelled', reason=?, finished_at=? WHERE {where}",
                 (reason, time.time()))
