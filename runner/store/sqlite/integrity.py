"""What a jobs database holds and whether it is sound: tables, indexes, integrity, disk room."""

from __future__ import annotations

import sqlite3

from runner.errors import DatabaseCorrupt, DatabaseLocked, DatabaseUnavailable
from runner.store.sqlite.db import Database
from runner.store.sqlite.models import is_jobs_database


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


def integrity_problem(db: Database, *, full_check_below: int) -> str | None:
    """``quick_check`` on files under ``full_check_below`` bytes, a schema read on bigger
    ones; the problem, or None."""
    try:
        size = db.path.stat().st_size
    except OSError as exc:
        return f"{db.path}: {exc.strerror}"
    if size > full_check_below:
        read_schema(db)
        return None
    result = quick_check(db)
    if result == "ok":
        return None
    return f"quick_check: {result} (try `sqlite3 {db.path} .recover` on a copy)"


def verify(db: Database) -> None:
    """Make sure the file opens as a jobs database.

    Raises:
        DatabaseLocked: the file stayed locked.
        DatabaseCorrupt: the file is damaged or not a jobs database.
        DatabaseUnavailable: the file cannot be read.
    """
    try:
        ok = is_jobs_database(db.connection())
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "locked" in text:
            raise DatabaseLocked(f"{db.path}: {text}") from None
        if "not a database" in text or "malformed" in text:
            raise DatabaseCorrupt(f"{db.path}: {text}") from None
        raise DatabaseUnavailable(f"{db.path}: {text}") from None
    if not ok:
        raise DatabaseCorrupt(f"{db.path}: not a jobs database (no runner_job table)")
