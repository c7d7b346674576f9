"""Named leases in the jobs database: one holder at a time, taken over once it expires.

The metrics exporter election (:mod:`runner.worker.exporter`) holds one. The table is
the model :class:`runner.store.tables.Lease`.
"""

from __future__ import annotations

import sqlite3
import time

from runner.store.sqlite.db import Database


def take_lease(db: Database, name: str, owner: str, ttl: float, *,
               now: float | None = None) -> bool:
    """Take the lease if it is free or expired, renew it if ours; True when we hold it."""
    at = time.time() if now is None else now

    def write(conn: sqlite3.Connection) -> bool:
        conn.execute(
            "INSERT INTO runner_lease (name, owner, expires_at) VALUES (?,?,?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at "
            "WHERE runner_lease.owner = excluded.owner OR runner_lease.expires_at < ?",
            (name, owner, at + ttl, at))
        row = conn.execute("SELECT owner FROM runner_lease WHERE name = ?", (name,)).fetchone()
        return bool(row and row[0] == owner)

    return db.write(write, deadline=ttl / 3)


def release_lease(db: Database, name: str, owner: str) -> None:
    """Give the lease up (a clean stop), so another holder can take it at once."""
    db.write(lambda conn: conn.execute(
        "DELETE FROM runner_lease WHERE name = ? AND owner = ?", (name, owner)), deadline=2.0)
