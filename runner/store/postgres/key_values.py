"""PostgreSQL: huey's key/value store (``runner_kv``), named counters (``runner_counter``),
queue sizes, and the named leases (``runner_lease``).

Keys written with a TTL are gone once expired, for every read;
:func:`put_if_empty` deletes the expired row when it takes the key over.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.key_values`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import psycopg

from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.wakeup import REVOKED
from runner.store.states import WAITING

_WAITING = [s.value for s in WAITING]

#: Appended to a ``WHERE key ...`` clause; its parameter is the current time.
_LIVE = " AND (expires_at IS NULL OR expires_at >= %s)"


def _revocations(keys: Sequence[str]) -> bool:
    """Whether every key is huey's revocation of a job (``r:``) or a task (``rt:``)."""
    return all(k.startswith(("r:", "rt:")) for k in keys)


def _none_revoked(db: PgDatabase, keys: Sequence[str]) -> bool:
    """Revocation keys that cannot exist: the last claim found no revocation and none
    was written since (a revocation's write notifies every listening host); a worker
    then starts and finishes a job without reading them."""
    return db.knows_no_revocations() and _revocations(keys)


def put(db: PgDatabase, key: str, value: bytes) -> None:
    if _revocations([key]):
        db.revocations_may_have_changed()
        # Stamped by the server's clock (clock_timestamp(): this statement's time, not the
        # BEGIN's), the clock a worker's clear of an earlier revocation is judged by.
        db.write(lambda c: c.execute(
            "WITH kept AS (INSERT INTO runner_kv (key, value, written_at) VALUES (%s, %s, "
            "extract(epoch FROM clock_timestamp())::float8) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value, expires_at = NULL, written_at = excluded.written_at) "
            "SELECT pg_notify(%s, %s)", (key, value, db.channel, REVOKED)), single=True)
        db.revocations_may_have_changed()  # a claim that read before the commit saw none
        return
    db.write(lambda c: c.execute(
        "INSERT INTO runner_kv (key, value) VALUES (%s, %s) ON CONFLICT (key) "
        "DO UPDATE SET value = excluded.value, expires_at = NULL", (key, value)), single=True)


def put_if_empty(db: PgDatabase, key: str, value: bytes, ttl: float | None, now: float) -> bool:
    def put(conn: psycopg.Connection) -> bool:
        conn.execute("DELETE FROM runner_kv WHERE key = %s AND expires_at < %s", (key, now))
        return conn.execute(
            "INSERT INTO runner_kv (key, value, expires_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (key) DO NOTHING", (key, value, now + ttl if ttl else None)).rowcount == 1

    return db.write(put)


def count(db: PgDatabase) -> int:
    return db.query("SELECT count(*) FROM runner_kv")[0][0]


def take_lease(db: PgDatabase, name: str, owner: str, ttl: float, *,
               now: float | None = None) -> bool:
    """Take the lease if it is free or expired, renew it if ours; True when we hold it."""
    at = time.time() if now is None else now
    rows = db.write(lambda c: c.execute(
        "INSERT INTO runner_lease AS l (name, owner, expires_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
        "expires_at = excluded.expires_at WHERE l.owner = excluded.owner OR l.expires_at < %s "
        "RETURNING owner", (name, owner, at + ttl, at)).fetchall(),
        deadline=ttl / 3, single=True)
    return bool(rows and rows[0][0] == owner)


def release_lease(db: PgDatabase, name: str, owner: str) -> None:
    """Give the lease up (a clean stop), so another holder can take it at once."""
    db.write(lambda c: c.execute("DELETE FROM runner_lease WHERE name = %s AND owner = %s",
                                 (name, owner)), deadline=2.0, single=True)


class PostgresKeyValues:
    """:class:`runner.store.key_values.KeyValuesStore` on a PostgreSQL database."""

    db: PgDatabase

    def kv_put(self, key: str, value: bytes) -> None:
        put(self.db, key, value)

    def kv_peek(self, key: str, *, now: float) -> bytes | None:
        db = self.db
        if _none_revoked(db, [key]):
            return None
        rows = db.query(f"SELECT value FROM runner_kv WHERE key = %s{_LIVE}", (key, now))
        return bytes(rows[0][0]) if rows else None

    def kv_peek_many(self, keys: Sequence[str], *, now: float) -> dict[str, bytes]:
        db = self.db
        if not keys or _none_revoked(db, keys):
            return {}
        return {k: bytes(v) for k, v in db.query(
            f"SELECT key, value FROM runner_kv WHERE key = ANY(%s){_LIVE}", (list(keys), now))}

    def kv_pop(self, key: str, *, now: float) -> bytes | None:
        db = self.db
        if _none_revoked(db, [key]):
            return None
        rows = db.write(lambda c: c.execute(
            "DELETE FROM runner_kv WHERE key = %s RETURNING value, expires_at", (key,)).fetchall(),
            single=True)
        return bytes(rows[0][0]) if rows and (rows[0][1] is None or rows[0][1] >= now) else None

    def kv_delete(self, key: str, *, now: float, written_by: float | None = None) -> bool:
        db = self.db
        if _none_revoked(db, [key]):
            return False
        if written_by is None:
            sql, args = "DELETE FROM runner_kv WHERE key = %s RETURNING expires_at", (key,)
        else:
            sql = ("DELETE FROM runner_kv WHERE key = %s AND (written_at IS NULL OR "
                   "written_at <= %s) RETURNING expires_at")
            args = (key, written_by)
        rows = db.write(lambda c: c.execute(sql, args).fetchall(), single=True)
        return bool(rows) and (rows[0][0] is None or rows[0][0] >= now)

    def kv_put_if_empty(self, key: str, value: bytes, *, ttl: float | None,
                        now: float) -> bool:
        return put_if_empty(self.db, key, value, ttl, now)

    def kv_items(self) -> dict[str, bytes]:
        db = self.db
        return {k: bytes(v) for k, v in db.query("SELECT key, value FROM runner_kv")}

    def kv_count(self) -> int:
        return count(self.db)

    def kv_flush(self) -> None:
        db = self.db
        db.write(lambda c: c.execute("DELETE FROM runner_kv"))

    def counter_incr(self, key: str, amount: int = 1) -> int:
        db = self.db
        return db.write(lambda c: c.execute(
            "INSERT INTO runner_counter (key, value) VALUES (%s, %s) ON CONFLICT (key) "
            "DO UPDATE SET value = runner_counter.value + excluded.value RETURNING value",
            (key, amount)).fetchone()[0], single=True)

    def counter_delete(self, key: str) -> None:
        db = self.db
        db.write(lambda c: c.execute("DELETE FROM runner_counter WHERE key = %s", (key,)))

    def counter_flush(self) -> None:
        db = self.db
        db.write(lambda c: c.execute("DELETE FROM runner_counter"))

    def waiting_size(self, *, now: float, due: bool) -> int:
        """Waiting jobs due by ``now`` (``due``) or due later (huey's queue and schedule sizes)."""
        db = self.db
        return db.query(f"SELECT count(*) FROM runner_job WHERE state = ANY(%s) "
                        f"AND run_at {'<=' if due else '>'} %s", (_WAITING, now))[0][0]

    def waiting_payloads(self, *, now: float, due: bool, limit: int | None) -> list[bytes]:
        """Payloads of waiting jobs due by ``now`` in claim order, or due later by time."""
        db = self.db
        order = "priority DESC, run_at" if due else "run_at"
        rows = db.query(f"SELECT data FROM runner_job WHERE state = ANY(%s) "
                        f"AND run_at {'<=' if due else '>'} %s ORDER BY {order} LIMIT %s",
                        (_WAITING, now, limit))
        return [bytes(r[0]) for r in rows]
