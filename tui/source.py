"""Where the dashboard's data comes from: one read-only and one read-write handle.

Reads go through one ``mode=ro`` connection that polls take turns on (a lock
keeps them from overlapping), kept open between refreshes so SQLite's page
cache stays warm. It is in autocommit mode and every query fetches all its rows
and closes its cursor, so no snapshot survives a read and the workers'
checkpoints are never starved. When the file goes away or is replaced, or a
read fails, the connection is closed and the next read opens the file again.
Writes (actions) use a separate read-write :class:`Database`, opened and closed
for each action.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee

from runner.config import DatabaseSection
from runner.errors import (
    DatabaseCorrupt,
    DatabaseError,
    DatabaseLocked,
    DatabaseUnavailable,
    RunnerError,
)
from runner.store.db import Database
from runner.store.models import is_jobs_database

#: Errors a read may raise when the database is missing, locked or damaged.
READ_ERRORS = (RunnerError, sqlite3.Error, peewee.DatabaseError, OSError)


def is_database_problem(exc: BaseException) -> bool:
    """True when ``exc`` comes from the database file, False for a bug in the code.

    SQLite's programming and interface errors (a wrong statement, a bad
    parameter) are bugs; locked, missing, damaged or full files are not.
    """
    if isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return False
    return isinstance(exc, (DatabaseError, sqlite3.DatabaseError, peewee.DatabaseError,
                            OSError))


class DataSource:
    """The jobs database as the dashboard uses it.

    Args:
        path: the SQLite file.
        options: ``[database]`` settings (busy timeout for reads and actions).
        read_only: refuse every action (``--read-only``, or ``[tui] actions = false``).
        read_only_reason: what turned actions off, for the messages.
    """

    def __init__(self, path: str | Path, options: DatabaseSection | None = None, *,
                 read_only: bool = False, read_only_reason: str = "--read-only") -> None:
        self.path = Path(path)
        self.options = options or DatabaseSection(busy_timeout=2.0, write_deadline=5.0)
        self.read_only = read_only
        self.read_only_reason = read_only_reason
        self._reader: Database | None = None
        self._writer: Database | None = None
        self._read_lock = threading.Lock()
        self._inode: int | None = None

    def check(self) -> None:
        """Open the file once and make sure it is a jobs database.

        Raises:
            DatabaseUnavailable: the file is missing, is a directory or cannot be opened.
            DatabaseCorrupt: the file is not a jobs database.
            DatabaseLocked: the file stayed locked.
        """
        self._check_path()
        with self.reading() as db:
            try:
                ok = is_jobs_database(db.connection())
            except sqlite3.DatabaseError as exc:
                text = str(exc)
                if "locked" in text:
                    raise DatabaseLocked(f"{self.path}: {text}") from None
                if "not a database" in text or "malformed" in text:
                    raise DatabaseCorrupt(f"{self.path}: {text}") from None
                raise DatabaseUnavailable(f"{self.path}: {text}") from None
            if not ok:
                raise DatabaseCorrupt(f"{self.path}: not a jobs database (no runner_job table)")

    def _check_path(self) -> None:
        # What a newcomer needs: where the database comes from, not SQLite's I/O errors.
        if self.path.is_dir():
            inside = self.path / "jobs.db"
            hint = (f"did you mean --db {inside}?" if inside.is_file() else
                    "pass the database file with --db PATH")
            raise DatabaseUnavailable(f"{self.path} is a directory, not a jobs database; {hint}")
        if not self.path.exists():
            where = ("no such directory" if not self.path.parent.is_dir() else
                     "no such file")
            raise DatabaseUnavailable(
                f"{self.path}: {where}. The workers create the database: start "
                "`python run.py` first, or pass `--db PATH` (or `--settings`) to point at "
                "an existing one")

    @contextmanager
    def reading(self) -> Iterator[Database]:
        """The read-only database for one refresh (one refresh at a time).

        Raises:
            DatabaseUnavailable: the file is missing.
        """
        with self._read_lock:
            try:
                inode = self.path.stat().st_ino
            except OSError as exc:
                self._close_reader()
                raise DatabaseUnavailable(f"{self.path}: {exc.strerror}") from None
            if inode != self._inode:
                self._close_reader()
                self._inode = inode
            if self._reader is None:
                self._reader = Database(self.path, self.options, readonly=True, shared=True)
            try:
                yield self._reader
            except BaseException:
                self._close_reader()
                raise
            conn = self._reader.connection()
            if conn.in_transaction:  # never carry a snapshot into the next refresh
                conn.rollback()

    def close(self) -> None:
        """Close the read connection (the app calls this when it exits)."""
        with self._read_lock:
            self._close_reader()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    @contextmanager
    def writing(self) -> Iterator[Database]:
        """The read-write database for one action; this thread's connection closes after.

        Raises:
            DatabaseUnavailable: the dashboard was started with ``--read-only``.
        """
        if self.read_only:
            raise DatabaseUnavailable(f"read-only: actions are off ({self.read_only_reason})")
        if self._writer is None:
            self._writer = Database(self.path, self.options)
        db = self._writer
        try:
            yield db
        finally:
            db.close()
