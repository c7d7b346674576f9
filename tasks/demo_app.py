"""A tiny application database the example tasks work on: sessions, conversations,
workspaces and an audit log.

It lives in its own SQLite file (``DEMO_DATABASE``, default ``demo_app.db``), never
in the jobs database.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, updated_at REAL NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS workspaces (
    user_id INTEGER PRIMARY KEY, created_at REAL NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL);
"""


def database_path() -> str:
    """Where the demo application's data lives."""
    return os.environ.get("DEMO_DATABASE", "demo_app.db")


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """A connection with the schema in place, committed on success."""
    with closing(sqlite3.connect(database_path(), timeout=10)) as conn:
        conn.executescript(SCHEMA)
        with conn:
            yield conn


def expire_sessions(now: float | None = None) -> int:
    """Delete sessions past their expiry; returns how many."""
    at = time.time() if now is None else now
    with connect() as conn:
        return conn.execute("DELETE FROM sessions WHERE expires_at < ?", (at,)).rowcount


def archive_conversations(older_than_days: float, now: float | None = None) -> int:
    """Archive conversations not updated for ``older_than_days``; returns how many."""
    at = time.time() if now is None else now
    with connect() as conn:
        return conn.execute(
            "UPDATE conversations SET archived = 1 WHERE archived = 0 AND updated_at < ?",
            (at - older_than_days * 86400,)).rowcount


def create_workspace(user_id: int, now: float | None = None) -> bool:
    """Create a user's workspace once; False when it already exists."""
    at = time.time() if now is None else now
    with connect() as conn:
        cur = conn.execute(
            "INSERT OR IGNORE INTO workspaces (user_id, created_at, name) VALUES (?, ?, ?)",
            (user_id, at, f"workspace-{user_id}"))
        return cur.rowcount == 1


def write_audit(event: str, detail: str, now: float | None = None) -> None:
    """Append one line to the audit log."""
    at = time.time() if now is None else now
    with connect() as conn:
        conn.execute("INSERT INTO audit_log (at, event, detail) VALUES (?, ?, ?)",
                     (at, event, detail))


def audit_lines() -> list[tuple[str, str]]:
    """The audit log as (event, detail) pairs, oldest first."""
    with connect() as conn:
        return conn.execute("SELECT event, detail FROM audit_log ORDER BY id").fetchall()
