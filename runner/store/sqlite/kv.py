"""SQLite statements of huey's key/value store (``runner_kv``) and named counters
(``runner_counter``): results, revocations, locks.

Keys written with a TTL (huey's ``lock_task(ttl=...)``) are gone once expired,
for every read; :func:`put_if_empty` deletes the expired row when it takes the
key over. A value's ``written_at`` lets a clear of a revocation given a time
(:func:`delete`'s ``written_by``) leave one written after it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from runner.store.sqlite.db import Database

#: Appended to a ``WHERE key ...`` clause; its parameter is the current time.
_LIVE = " AND (expires_at IS NULL OR expires_at >= ?)"


def put(db: Database, key: str, value: bytes) -> None:
    # A file has no clock but its host's, the one every process on it judges by.
    db.write(lambda c: c.execute(
        "INSERT OR REPLACE INTO runner_kv (key, value, written_at) VALUES (?, ?, ?)",
        (key, value, time.time())))


def peek(db: Database, key: str, now: float) -> bytes | None:
    rows = db.query(f"SELECT value FROM runner_kv WHERE key=?{_LIVE}", (key, now))
    return rows[0][0] if rows else None


def peek_many(db: Database, keys: Sequence[str], now: float) -> dict[str, bytes]:
    if not keys:
        return {}
    return dict(db.query(
        f"SELECT key, value FROM runner_kv WHERE key IN ({','.join('?' * len(keys))})"
        f"{_LIVE}", (*keys, now)))


def pop(db: Database, key: str, now: float) -> bytes | None:
    # A read first: most pops find nothing, and a read takes no write lock.
    if not db.query("SELECT 1 FROM runner_kv WHERE key=?", (key,)):
        return None
    rows = db.write(lambda c: c.execute(
        "DELETE FROM runner_kv WHERE key=? RETURNING value, expires_at", (key,)).fetchall())
    return rows[0][0] if rows and (rows[0][1] is None or rows[0][1] >= now) else None


def has(db: Database, key: str, now: float) -> bool:
    return bool(db.query(f"SELECT 1 FROM runner_kv WHERE key=?{_LIVE}", (key, now)))


def delete(db: Database, key: str, now: float, written_by: float | None = None) -> bool:
    if not db.query("SELECT 1 FROM runner_kv WHERE key=?", (key,)):
        return False
    if written_by is None:
        sql, args = "DELETE FROM runner_kv WHERE key=? RETURNING expires_at", (key,)
    else:
        sql = ("DELETE FROM runner_kv WHERE key=? AND (written_at IS NULL OR written_at <= ?) "
               "RETURNING expires_at")
        args = (key, written_by)
    rows = db.write(lambda c: c.execute(sql, args).fetchall())
    return bool(rows) and (rows[0][0] is None or rows[0][0] >= now)


def put_if_empty(db: Database, key: str, value: bytes, ttl: float | None, now: float) -> bool:
    def write(conn: sqlite3.Connection) -> bool:
        conn.execute("DELETE FROM runner_kv WHERE key=? AND expires_at < ?", (key, now))
        cur = conn.execute(
            "INSERT OR IGNORE INTO runner_kv (key, value, expires_at) VALUES (?, ?, ?)",
            (key, value, now + ttl if ttl else None))
        return cur.rowcount == 1

    return db.write(write)


def items(db: Database) -> dict[str, bytes]:
    return dict(db.query("SELECT key, value FROM runner_kv"))


def count(db: Database) -> int:
    return db.query("SELECT count(*) FROM runner_kv")[0][0]


def flush(db: Database) -> None:
    db.write(lambda c: c.execute("DELETE FROM runner_kv"))


def incr(db: Database, key: str, amount: int) -> int:
    return db.write(lambda c: c.execute(
        "INSERT INTO runner_counter (key, value) VALUES (?, ?) ON CONFLICT (key) "
        "DO UPDATE SET value = value + excluded.value RETURNING value",
        (key, amount)).fetchone()[0])


def delete_counter(db: Database, key: str) -> None:
    db.write(lambda c: c.execute("DELETE FROM runner_counter WHERE key=?", (key,)))


def flush_counters(db: Database) -> None:
    db.write(lambda c: c.execute("DELETE FROM runner_counter"))
