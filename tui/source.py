"""Where the dashboard's data comes from: one read-only and one read-write store.

Reads go through one read-only store whose single connection the polls take
turns on (a lock keeps them from overlapping), kept open between refreshes so
the database's cache stays warm. Every read fetches all its rows, so no
snapshot survives a read and the workers' checkpoints are never starved. When
the data goes away or is replaced, or a read fails, the connection is closed
and the next read opens it again. Writes (actions) use a separate read-write
store whose connection is closed after each action. Both are opened by
:func:`runner.store.factory.open_store`, so ``--db`` may be a file or a URL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.config import DatabaseSection
from runner.errors import DatabaseError, DatabaseUnavailable, RunnerError
from runner.files import is_empty_database
from runner.store.backend import Store
from runner.store.factory import (
    PROBE_WAIT,
    driver_errors,
    is_driver_bug,
    is_url,
    open_store,
    redacted,
)

#: The database (a file or a URL) when ``--db`` is not given: how ``--web`` hands a
#: URL to the dashboards it starts without putting it on their command line (tui.web).
DB_ENV = "JOBRUNNER_TUI_DB"

#: Errors a read may raise when the database is missing, locked or damaged.
READ_ERRORS = (RunnerError, OSError, *driver_errors())

logger = logging.getLogger(__name__)


def is_database_problem(exc: BaseException) -> bool:
    """True when ``exc`` comes from the database, False for a bug in the code.

    A driver's programming and interface errors (a wrong statement, a bad
    parameter) are bugs; locked, missing, damaged or full databases are not.
    """
    if is_driver_bug(exc):
        return False
    return isinstance(exc, (DatabaseError, OSError, *driver_errors()))


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
        self.url = str(path) if is_url(str(path)) else None
        # A URL's password is never shown (status line, error log): only its other parts.
        self.path = (Path(path) if self.url is None
                     else Path(redacted(self.url).split("://", 1)[1]))
        self.options = options or DatabaseSection(busy_timeout=2.0, write_deadline=5.0)
        self.read_only = read_only
        self.read_only_reason = read_only_reason
        self._reader: Store | None = None
        self._writer: Store | None = None
        # Moves jobs from SQLite's intake before a read (see _absorb_intake).
        self._mover: Store | None = None
        self._read_lock = threading.Lock()

    def check(self) -> None:
        """Open the file once and make sure it is a jobs database.

        Raises:
            DatabaseUnavailable: the file is missing, is a directory or cannot be opened.
            DatabaseCorrupt: the file is not a jobs database.
            DatabaseLocked: the file stayed locked.
        """
        self._check_path()
        with self.reading() as store:
            store.verify()

    def _check_path(self) -> None:
        # What a newcomer needs: where the database comes from, not SQLite's I/O errors.
        if self.url is not None:
            return
        if self.path.is_dir():
            inside = self.path / "jobs.db"
            hint = (f"did you mean --db {inside}?" if inside.is_file() else
                    "pass the database file with --db PATH")
            raise DatabaseUnavailable(f"{self.path} is a directory, not a jobs database; {hint}")
        empty = is_empty_database(self.path)
        if empty or not self.path.exists():
            where = ("the file is empty: no jobs database yet" if empty else
                     "no such directory" if not self.path.parent.is_dir() else
                     "no such file")
            raise DatabaseUnavailable(
                f"{self.path}: {where}. The workers create the database: start "
                "`python run.py` first, or pass `--db PATH` (or `--settings`) to point at "
                "an existing one")

    @contextmanager
    def reading(self) -> Iterator[Store]:
        """The read-only store for one refresh (one refresh at a time).

        Raises:
            DatabaseUnavailable: the database is missing.
        """
        with self._read_lock:
            if self._reader is None:
                if self.url is None and not self.path.exists():
                    raise DatabaseUnavailable(f"{self.path}: no such file")
                # A server that does not answer is told at once, not after a writer's
                # wait: the next refresh tries again.
                # A lock another session holds is waited out no longer than a file's: the
                # poll fails, and the status line says the data shown is from before.
                self._reader = open_store(self.url or self.path, readonly=True, shared=True,
                                          options=self.options, reach_within=PROBE_WAIT,
                                          lock_wait=self.options.busy_timeout)
            reader = self._reader
            try:
                reader.refresh()
                self._absorb_intake(reader)
                yield reader
            except BaseException:
                self._close_reader()
                raise
            try:
                reader.refresh()  # never carry a snapshot into the next refresh
            except Exception:  # gone meanwhile: the next refresh says so
                self._close_reader()

    def _absorb_intake(self, reader: Store) -> None:
        """Jobs enqueued while no worker wrote since wait in SQLite's intake, which this
        read-only connection does not read: have them moved into the jobs table first,
        so the screens show them. Best effort: without write access, or with the lock
        held elsewhere, the refresh shows what the table holds."""
        if not reader.intake_waiting():
            return
        # Not an action on any job (each keeps its state): done with --read-only too.
        try:
            if self._mover is None:
                self._mover = open_store(self.url or self.path, options=self.options,
                                         lock_wait=self.options.busy_timeout)
            try:
                self._mover.absorb_intake()
            finally:
                self._mover.close()
        except Exception:
            logger.debug("jobs in the intake not moved", exc_info=True)
        reader.refresh()

    def close(self) -> None:
        """Close the read connection (the app calls this when it exits)."""
        with self._read_lock:
            self._close_reader()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    @contextmanager
    def writing(self) -> Iterator[Store]:
        """The read-write store for one action; this thread's connection closes after.

        Raises:
            DatabaseUnavailable: the dashboard was started with ``--read-only``.
        """
        if self.read_only:
            raise DatabaseUnavailable(f"read-only: actions are off ({self.read_only_reason})")
        if self._writer is None:
            self._writer = open_store(self.url or self.path, options=self.options,
                                      lock_wait=self.options.busy_timeout)
        store = self._writer
        try:
            yield store
        finally:
            store.close()
