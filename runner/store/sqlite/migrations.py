"""The schema version recorded in a jobs database, and the forward migrations to the current one.

``runner_meta`` holds ``schema``: the version of the code that last migrated
the file. At start-up (:func:`runner.store.sqlite.schema.prepare_database`) a file at
an older version is migrated forward, one step per version, inside the same
write transaction that creates what is missing; a file at a newer version is
refused (:class:`~runner.errors.SchemaTooNew`, exit 78) and left untouched, so an
old worker never writes rows a newer one would misread.

To change the schema: bump :data:`SCHEMA_VERSION` and add the step that brings
a file from the previous version to it in :data:`MIGRATIONS` (a new table or
index needs no step: ``create_schema`` adds what is missing).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from runner.errors import SchemaTooNew

#: The version this code writes. 1: the first recorded schema (tables of runner.store.tables).
#: 2: ``runner_job.concurrency_key`` (per-key concurrency limits); unique keys are checked
#: by the enqueue (per task states and window), not by a UNIQUE index over live jobs.
SCHEMA_VERSION = 2


def _add_concurrency_key(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runner_job)")}
    if "concurrency_key" not in columns:
        conn.execute("ALTER TABLE runner_job ADD COLUMN concurrency_key TEXT")
    conn.execute("DROP INDEX IF EXISTS runner_job_unique")


#: target version -> the step that migrates a file from the version before it.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _add_concurrency_key}


def recorded_version(conn: sqlite3.Connection) -> int | None:
    """The schema version a file records; None for a file without our tables yet.

    A file with our tables and no recorded version predates versioning: version 1.
    """
    names = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' "
        "AND name IN ('runner_meta', 'runner_job')")}
    if "runner_meta" in names:
        row = conn.execute("SELECT value FROM runner_meta WHERE key='schema'").fetchone()
        if row:
            return int(row[0])
    return 1 if "runner_job" in names else None


def refuse_newer(path: Path, version: int | None, current: int | None = None) -> None:
    """Raise SchemaTooNew when a file records a version newer than this code's.

    Raises:
        SchemaTooNew: nothing is changed in the file.
    """
    known = SCHEMA_VERSION if current is None else current
    if version is not None and version > known:
        raise SchemaTooNew(
            f"{path}: the database has schema version {version}, written by a newer "
            f"jobrunner; this one knows versions up to {known}. Upgrade jobrunner on this "
            "host, or point [runner] database / RUNNER_DATABASE at another file")


def migrate(conn: sqlite3.Connection, path: Path, version: int | None) -> int:
    """Bring a file at ``version`` forward to :data:`SCHEMA_VERSION` in the caller's transaction.

    ``version`` is what the file recorded before this transaction created any
    missing table (None: a new file, which is current once created).

    Returns:
        The version the file had (the current one for a new file).
    """
    refuse_newer(path, version)
    start = SCHEMA_VERSION if version is None else version
    for target in range(start + 1, SCHEMA_VERSION + 1):
        step = MIGRATIONS.get(target)
        if step is not None:
            step(conn)
    conn.execute("INSERT OR REPLACE INTO runner_meta (key, value) VALUES ('schema', ?)",
                 (str(SCHEMA_VERSION),))
    return start
