"""What a jobs database holds and whether it is sound: tables, indexes, integrity, disk room."""

from __future__ import annotations

import sqlite3

from runner.errors import DatabaseCorrupt, DatabaseLocked, DatabaseUnavailable, SchemaTooOld
from runner.store.sqlite.db import Database
from runner.store.sqlite.migrations import SCHEMA_VERSION, recorded_version, refuse_newer
from runner.store.sqlite.models import is_jobs_database, missing_schema


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

    A reader that must not write (the dashboard) reads a file only at this
    code's schema: an older file is upgraded by the first worker or command that
    opens it for writing, and a newer one is refused as a writer refuses it.

    Raises:
        DatabaseLocked: the file stayed locked.
        DatabaseCorrupt: the file is damaged or not a jobs database.
        DatabaseUnavailable: the file cannot be read.
        SchemaTooNew: a newer jobrunner wrote the file.
        SchemaTooOld: the file awaits an upgrade (a write) by this version.
    """
    try:
        conn = db.connection()
        ok = is_jobs_database(conn)
        if ok:
            _check_schema(db, conn)
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "locked" in text:
            raise DatabaseLocked(f"{db.path}: {text}") from None
        if "not a database" in text or "malformed" in text:
            raise DatabaseCorrupt(f"{db.path}: {text}") from None
        raise DatabaseUnavailable(f"{db.path}: {text}") from None
    if not ok:
        raise DatabaseCorrupt(f"{db.path}: not a jobs database (no runner_job table)")


def _check_schema(db: Database, conn: sqlite3.Connection) -> None:
    version = recorded_version(conn, db.path)
    refuse_newer(db.path, version)
    missing = missing_schema(conn)
    if version == SCHEMA_VERSION and not missing:
        return
    what = (f"has schema version {version}" if version != SCHEMA_VERSION else
            f"lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    raise SchemaTooOld(
        f"{db.path}: the database {what}; this jobrunner knows version {SCHEMA_VERSION} "
        "and reads the file only once it is upgraded, which takes a write this reader "
        "does not make. Start a worker of this version on it (python run.py), or run "
        "any python -m runner command on it once, then open it again")
