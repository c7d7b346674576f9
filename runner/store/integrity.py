"""What a jobs database holds and whether it is sound: tables, indexes, integrity, disk room."""

from __future__ import annotations

import sqlite3

from runner.store.db import Database


def has_table(db: Database, name: str) -> bool:
    """True when the database holds table ``name`` (newer features add tables)."""
    return bool(db.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)))


def index_hint(db: Database, name: str) -> str:
    """``INDEXED BY name`` when the index exists, else nothing.

    A database written by an older worker may lack an index a reader prefers;
    the query then still runs, only slower, until a newer worker creates it.
    """
    found = db.query("SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (name,))
    return f" INDEXED BY {name}" if found else ""


def quick_check(db: Database) -> str:
    """SQLite's ``quick_check(1)``: ``"ok"`` or the first problem found (O(file size))."""
    return db.query("PRAGMA quick_check(1)")[0][0]


def read_schema(db: Database) -> int:
    """Read the schema (cheap proof the file opens as a database); returns its object count."""
    return db.query("SELECT count(*) FROM sqlite_master")[0][0]


class _ProbeRollback(Exception):
    """Ends the probe transaction without committing."""


def probe_write(db: Database, size: int, *, deadline: float, commit: bool = False) -> None:
    """Allocate about ``size`` bytes: rolled back, or with ``commit`` committed and deleted.

    A small rolled-back write may never leave SQLite's page cache, so only a
    committed one proves the disk takes writes again.

    Raises:
        DiskFull: the pages could not be had.
        DatabaseLocked: the write lock was not had within ``deadline`` seconds.
    """

    def probe(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT OR REPLACE INTO runner_meta (key, value) "
                     "VALUES ('disk_probe', hex(randomblob(?)))", (size // 2,))
        if not commit:
            raise _ProbeRollback

    try:
        db.write(probe, deadline=deadline)
        if commit:
            db.write(lambda c: c.execute("DELETE FROM runner_meta WHERE key = 'disk_probe'"),
                     deadline=deadline)
    except _ProbeRollback:
        return
