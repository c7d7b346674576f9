"""Opening a jobs database: refuse a foreign or newer file, create and migrate, once per process."""

from __future__ import annotations

import sqlite3
import threading

from runner.errors import DatabaseCorrupt
from runner.store.sqlite.db import Database
from runner.store.sqlite.migrations import (
    SCHEMA_VERSION,
    migrate,
    record_version,
    recorded_version,
    refuse_newer,
)
from runner.store.sqlite.models import create_schema, is_jobs_database, schema_is_current

_schema_ready: set[str] = set()
_schema_lock = threading.Lock()

#: Seconds an open waits for the write lock to upgrade the file, at least: another process
#: may hold it to run the same migration, which copies every job of a large file (longer
#: than ``write_deadline``); it then finds the work done. PostgreSQL's start-up waits as long.
UPGRADE_WAIT = 120.0


def prepare_database(db: Database) -> None:
    """Create the schema once per file per process, refusing a foreign file."""
    key = str(db.path.absolute())
    if key in _schema_ready:
        return
    with _schema_lock:
        if key in _schema_ready:
            return
        conn = db.connection()
        try:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        except sqlite3.DatabaseError as exc:
            raise DatabaseCorrupt(
                f"{db.path}: {exc}; this is not a jobs database. Move it aside or point "
                "[runner] database / RUNNER_DATABASE at another file") from None
        if tables and not is_jobs_database(conn) and not db.readonly:
            names = {name for (name,) in tables}
            if not names <= {"task", "schedule", "kv", "counter"}:
                raise DatabaseCorrupt(
                    f"{db.path}: holds other tables ({', '.join(sorted(names)[:5])}); "
                    "it is not a jobs database")
        version = recorded_version(conn, db.path)
        refuse_newer(db.path, version)
        # Opening a current database needs no write lock: a producer can start while
        # another process holds the lock, and fails only if it must write.
        if not db.readonly and (not schema_is_current(conn) or version != SCHEMA_VERSION):
            def upgrade(c: sqlite3.Connection) -> None:
                before = recorded_version(c, db.path)  # again: another process may have moved it
                migrate(c, db.path, before)
                create_schema(c)
                record_version(c)

            db.write(upgrade, deadline=max(db.options.write_deadline, UPGRADE_WAIT))
        _schema_ready.add(key)
        if _recheck not in db.on_replaced:
            db.on_replaced.append(_recheck)


def _recheck(db: Database) -> None:
    """The file was replaced (a restore): check the new one as on first open."""
    _schema_ready.discard(str(db.path.absolute()))
    prepare_database(db)
