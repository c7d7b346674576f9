"""The schema version recorded in a jobs database, and the forward migrations to the current one.

``runner_meta`` holds ``schema``: the version of the code that last migrated
the file. At start-up (:func:`runner.store.sqlite.schema.prepare_database`) a file at
an older version is migrated forward, one step per version, inside the same
write transaction that then creates what is missing; a file at a newer version
is refused (:class:`~runner.errors.SchemaTooNew`, exit 78) and left untouched, so
an old worker never writes rows a newer one would misread.

To change the schema: bump :data:`SCHEMA_VERSION` and add the step that brings
a file from the previous version to it in :data:`MIGRATIONS`. A step sees the
file as the previous version left it; what it drops, ``create_schema`` then
makes anew (a new table, index or trigger needs no step).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from peewee import Model

from runner.errors import DatabaseCorrupt, SchemaTooNew
from runner.store.sqlite import counters
from runner.store.tables import Event, Job, JobTotal, create_table_sql

#: The version this code writes. 1: the first recorded schema (tables of runner.store.tables).
#: 2: ``runner_job.concurrency_key`` (per-key concurrency limits); unique keys are checked
#: by the enqueue (per task states and window), not by a UNIQUE index over live jobs.
#: 3: waiting jobs counted per queue in ``runner_job_total`` (rows whose task is '';
#: ``runner_queue`` is a view of them).
#: 4: fewer indexes written per enqueue: ``runner_job_queue_waiting`` goes (its reads use
#: ``runner_job_queue_claim``, which now ends with ``state``), and the state and task
#: indexes leave waiting jobs out; partial indexes and triggers test a waiting state by
#: comparisons (see runner.store.sqlite.conditions), not by an IN list; so do the CHECKs
#: of ``runner_job`` and ``runner_event`` (both tables are copied into new ones).
#: 5: ``runner_worker.clock_offset``, how far each worker's clock is from the store's.
#: 6: ``runner_job.parked`` and ``runner_room``: waiting jobs a concurrency limit holds back
#: leave the claim indexes (whose condition adds ``parked IS NULL``) until their limit has
#: room (runner.store.parking).
#: 7: ``runner_kv.written_at``: when a revocation was written, so that a worker's clear of
#: the one it read leaves a newer one in place.
#: 8: ``runner_intake``, where a single enqueue writes its job for the next transaction to
#: move into ``runner_job`` (runner.store.sqlite.transitions.intake): an older worker
#: would never move it.
SCHEMA_VERSION = 8


def _add_concurrency_key(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runner_job)")}
    if "concurrency_key" not in columns:
        conn.execute("ALTER TABLE runner_job ADD COLUMN concurrency_key TEXT")
    conn.execute("DROP INDEX IF EXISTS runner_job_unique")


def _to_3(conn: sqlite3.Connection) -> None:
    """Count each queue's waiting jobs in ``runner_job_total``, beside ``enqueued``.

    An enqueue then writes one counter table instead of two (and no trigger
    runs per inserted row). The ``runner_queue`` table and its triggers go; the
    view of the same name and the new triggers are created after this step.
    """
    for name in ("runner_queue_insert", "runner_queue_delete", "runner_queue_leave",
                 "runner_queue_enter"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                    "AND name = 'runner_queue'").fetchone():
        conn.execute("DROP TABLE runner_queue")
    conn.execute(create_table_sql(JobTotal))  # a file from before the counters has none
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runner_job_total)")}
    if "waiting" not in columns:
        conn.execute("ALTER TABLE runner_job_total ADD COLUMN waiting INTEGER NOT NULL "
                     "DEFAULT 0")
    counters.recount_waiting(conn)


def _to_4(conn: sqlite3.Connection) -> None:
    """Drop the indexes and triggers whose definition changes; ``create_schema`` makes
    the new ones.

    An index is rebuilt from the table, so no row moves; waiting jobs end up in
    two indexes instead of five.
    """
    for name in ("runner_job_queue_waiting", "runner_job_claim", "runner_job_suspect",
                 "runner_job_queue_claim", "runner_job_state_created", "runner_job_task"):
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    for name in ("runner_job_waiting_delete", "runner_job_waiting_leave",
                 "runner_job_waiting_enter", "runner_job_error_counted"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    for model in (Job, Event):
        _rebuild(conn, model)


def _to_5(conn: sqlite3.Connection) -> None:
    """``runner_worker.clock_offset``: a nullable column, no row to rewrite."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runner_worker)")}
    if "clock_offset" not in columns:
        conn.execute("ALTER TABLE runner_worker ADD COLUMN clock_offset REAL")


def _to_6(conn: sqlite3.Connection) -> None:
    """``runner_job.parked`` (a nullable column: no row to rewrite), and the claim indexes
    dropped, for ``create_schema`` to make them anew with ``parked IS NULL`` in their
    condition (no job is parked yet, so every waiting job is in them again)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runner_job)")}
    if "parked" not in columns:
        conn.execute("ALTER TABLE runner_job ADD COLUMN parked TEXT")
    for name in ("runner_job_claim", "runner_job_queue_claim"):
        conn.execute(f"DROP INDEX IF EXISTS {name}")


def _to_7(conn: sqlite3.Connection) -> None:
    """``runner_kv.written_at``: a nullable column, no row to rewrite (a revocation written
    before it has no time, and any clear of it removes it, as before)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runner_kv)")}
    if "written_at" not in columns:
        conn.execute("ALTER TABLE runner_kv ADD COLUMN written_at REAL")


def _rebuild(conn: sqlite3.Connection, model: type[Model]) -> None:
    """Copy a table into a new one made from its model, keeping every rowid.

    SQLite cannot change a table's CHECK in place. The table's indexes and
    triggers go with it; ``create_schema`` makes them anew.
    """
    name = model._meta.table_name
    sql = create_table_sql(model)
    quoted = f'"{name}"'
    assert sql.count(quoted) == 1, sql
    (old,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (name,)).fetchone()
    if old.split("(", 1)[1] == sql.split("(", 1)[1]:
        return
    conn.execute(sql.replace(quoted, f'"{name}_new"'))
    columns = ", ".join(f'"{c[1]}"' for c in conn.execute(f"PRAGMA table_info({quoted})"))
    conn.execute(f'INSERT INTO "{name}_new" (rowid, {columns}) '
                 f"SELECT rowid, {columns} FROM {quoted}")
    conn.execute(f"DROP TABLE {quoted}")
    conn.execute(f'ALTER TABLE "{name}_new" RENAME TO {quoted}')


#: target version -> the step that migrates a file from the version before it.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    2: _add_concurrency_key, 3: _to_3, 4: _to_4, 5: _to_5, 6: _to_6, 7: _to_7}


def recorded_version(conn: sqlite3.Connection, path: Path) -> int | None:
    """The schema version a file records; None for a file without our tables yet.

    A file with our tables and no recorded version predates versioning: version 1.

    Raises:
        DatabaseCorrupt: the recorded version is not a version number.
    """
    names = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' "
        "AND name IN ('runner_meta', 'runner_job')")}
    if "runner_meta" in names:
        row = conn.execute("SELECT value FROM runner_meta WHERE key='schema'").fetchone()
        if row:
            return parse_version(path, row[0])
    return 1 if "runner_job" in names else None


def parse_version(path: Path, value: object) -> int:
    """The version a ``runner_meta`` row holds: a whole number from 1 on.

    Raises:
        DatabaseCorrupt: anything else, which no release writes: the row was damaged or
            edited, and no migration can start from it; nothing is changed in the file.
    """
    text = str(value).strip()
    if re.fullmatch(r"[0-9]+", text) and int(text) >= 1:
        return int(text)
    raise DatabaseCorrupt(
        f"{path}: runner_meta records schema version {value!r}, which is not a version "
        "number; the database is damaged (nothing was changed in it): move it aside and "
        "restore a backup, or point [runner] database / RUNNER_DATABASE at another file")


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
    """Run the steps from ``version`` to :data:`SCHEMA_VERSION` in the caller's transaction.

    ``version`` is what the file recorded (None: a new file, which needs no
    step). The caller then creates what is missing and calls :func:`record_version`.

    Returns:
        The version the file had (the current one for a new file).
    """
    refuse_newer(path, version)
    start = SCHEMA_VERSION if version is None else version
    for target in range(start + 1, SCHEMA_VERSION + 1):
        step = MIGRATIONS.get(target)
        if step is not None:
            step(conn)
    return start


def record_version(conn: sqlite3.Connection) -> None:
    """Record that the file is now at :data:`SCHEMA_VERSION`."""
    conn.execute("INSERT OR REPLACE INTO runner_meta (key, value) VALUES ('schema', ?)",
                 (str(SCHEMA_VERSION),))
