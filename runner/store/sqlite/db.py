"""Connections to the jobs database: pragmas, write transactions, error mapping.

One :class:`Database` per file per process. Each thread gets its own SQLite
connection (through peewee), opened on its first use and kept: that is this
backend's connection pool. Measured on the development machine, a read on a
kept connection costs about 7 us and opening one (with its pragmas) about
730 us; the threads that read often (workers, lifeline, scheduler, the
dashboard's poller) live as long as the process, and those that do not (a
metrics request, a dashboard action) come at most a few times a second, so a
pool shared across threads would save nothing worth its locking.

Writes go through :meth:`Database.write`, which
serialises the process's own writers on a lock (cheaper than SQLite's busy
sleep), opens ``BEGIN IMMEDIATE`` so a read never has to be upgraded to a write,
and retries a locked database until a deadline. Every write of the process runs
on one connection of its own, whichever thread writes: SQLite empties a
connection's page cache whenever another connection has written, so when the
claims of a worker went round its threads' connections, each claim read every
page it touched again (the pages a weighted drain's claim touches in several
places of the table most). Reads inside a write run on it too.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import peewee

from runner.config import DatabaseSection
from runner.errors import DatabaseCorrupt, DatabaseLocked, DatabaseUnavailable, DiskFull
from runner.files import (
    DEFAULT_FILE_MODE,
    create_private,
    creation_problem,
    is_empty_database,
    write_refusal,
)
from runner.store.rows import AmbiguousId, short_id  # noqa: F401 - re-exported
from runner.store.sqlite.file_watch import FileWatch

logger = logging.getLogger(__name__)

T = TypeVar("T")

_LOCKED = ("database is locked", "database table is locked", "database schema is locked")
_CORRUPT = ("file is not a database", "database disk image is malformed")
_DISK = ("database or disk is full", "disk i/o error")
_READONLY = "readonly database"


def is_locked_error(exc: BaseException) -> bool:
    """True for SQLITE_BUSY/SQLITE_LOCKED, which a later retry may get past."""
    return isinstance(exc, (sqlite3.OperationalError, peewee.OperationalError)) and any(
        text in str(exc) for text in _LOCKED)


def is_disk_error(exc: BaseException) -> bool:
    """True for SQLITE_FULL and SQLITE_IOERR: the write could not reach the disk."""
    text = str(exc).lower()
    return any(t in text for t in _DISK)


def is_readonly_error(exc: BaseException) -> bool:
    """True for SQLITE_READONLY: SQLite opened the file read-only, as it does without
    write permission, and a write found out."""
    return _READONLY in str(exc)


def is_corrupt_error(exc: BaseException) -> bool:
    """True when SQLite says the file is damaged or not a database."""
    return any(text in str(exc) for text in _CORRUPT)


class Database:
    """The jobs database of one file, shared by every thread of a process.

    Args:
        path: the SQLite file; its directory is created when missing.
        options: the ``[database]`` settings.
        readonly: open with ``mode=ro`` (the dashboard); no writes, no schema set-up.
        shared: one connection for every thread instead of one per thread; the
            caller makes sure only one thread uses it at a time (the dashboard's
            polls, which keep the page cache warm from one poll to the next).
        file_mode: permissions of the file when this call creates it (the WAL
            and shared-memory files follow the database file's).
    """

    def __init__(self, path: str | Path, options: DatabaseSection | None = None, *,
                 readonly: bool = False, shared: bool = False,
                 file_mode: int = DEFAULT_FILE_MODE) -> None:
        self.path = Path(path)
        self._stat_path = str(self.path)  # os.stat of a Path converts it on every write
        self.options = options or DatabaseSection()
        self.readonly = readonly
        self._write_lock = threading.RLock()
        # Which file the open connection is on: per thread, or the one shared connection's.
        self._local = _PerThread() if not shared else _Shared()
        #: The connection writes run on (the shared one, when there is one).
        self._writer = self._local if shared else _Shared()
        #: Bumped when a write finds the file replaced: each thread's connection opened
        #: before is opened again at its next use.
        self._generation = 0
        _open_databases.add(self)
        self._identity = self._file_identity()
        # Tells writes when to read the file's identity again (made at the first write).
        self._watch: FileWatch | None = None
        #: Called with this database once the file was found replaced (schema checks).
        self.on_replaced: list[Callable[[Database], None]] = []
        #: Write transactions this process committed (the checkpointer looks for new ones).
        self.commits = 0
        #: Whether commits leave WAL checkpoints to a checkpointer thread
        #: (:mod:`runner.store.sqlite.checkpointer`) rather than run them themselves.
        self.deferred_checkpoints = False
        #: Moves the jobs of the intake into ``runner_job`` at the start of each write
        #: transaction, and tells whether there are any (runner.store.sqlite.transitions.intake: set
        #: by the store of a database that may write).
        self.absorb: Callable[[sqlite3.Connection], object] | None = None
        self.absorb_needed: Callable[[sqlite3.Connection], bool] | None = None
        #: The queues' weights in force, by which the intake is moved (every store of
        #: this database moves it the same way).
        self.queue_weights: Mapping[str, int] = {}
        pragmas: list[tuple[str, object]] = [("foreign_keys", 1), ("cache_size", -16000)]
        if not readonly:
            pragmas = [("journal_mode", "wal"),
                       ("synchronous", self.options.synchronous.upper()),
                       ("journal_size_limit", self.options.journal_size_limit),
                       *pragmas]
            if self.options.max_page_count:
                pragmas.append(("max_page_count", self.options.max_page_count))
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                why = (creation_problem(self.path) if isinstance(
                    exc, (FileExistsError, NotADirectoryError)) else None) or exc.strerror
                raise DatabaseUnavailable(
                    f"{self.path}: cannot create the database directory ({why}); "
                    "create it or point [runner] database / RUNNER_DATABASE elsewhere") from None
            try:
                created = create_private(self.path, file_mode)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"{self.path}: cannot create the database file ({exc.strerror}); "
                    "make its directory writable or point [runner] database / "
                    "RUNNER_DATABASE elsewhere") from None
            # An empty file (touched by a deploy step) is a new database too; should two
            # processes find it so, the second finds the first's work done, or waits briefly.
            if created or is_empty_database(self.path):
                _initialize_new_file(self.path, self.options.busy_timeout)
            # Opened read-write, never created: a thread opening its connection after the
            # file was deleted must not make an empty one that writes would then go to.
            name: str = f"file:{quote(str(self.path.absolute()))}?mode=rw"
            kwargs = {"uri": True}
        else:
            if not self.path.exists():
                raise DatabaseUnavailable(f"{self.path}: no such database file")
            name = f"file:{self.path.absolute()}?mode=ro"
            kwargs = {"uri": True}
        self.peewee = peewee.SqliteDatabase(
            name, pragmas=pragmas, timeout=self.options.busy_timeout,
            check_same_thread=False, autoconnect=True, thread_safe=not shared, **kwargs)

    # -- connections -------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (inside a write: the writer's).

        Opening sets the pragmas, and ``journal_mode = wal`` on a file another process
        is still setting up needs its write lock: SQLite refuses that at once rather
        than wait (a reader waiting on a writer could deadlock), so the open is tried
        again until ``write_deadline``, as a write would be. A connection opened before
        a write found the file replaced is opened again, on the file the path names now.
        """
        local = self._local
        if local.writing is not None:
            return local.writing
        conn = local.conn
        if conn is not None:
            if local.generation == self._generation:
                return conn
            self._close_thread()
        conn = self._open(self.peewee.connection, self._close_thread)
        local.identity = self._file_identity()
        local.generation = self._generation
        local.conn = conn
        return conn

    def _open(self, make: Callable[[], sqlite3.Connection],
              drop: Callable[[], None]) -> sqlite3.Connection:
        """``make()`` a connection, tried again while the file is locked (``drop`` forgets
        a half-opened one) until ``write_deadline``."""
        give_up: float | None = None
        delay = 0.005
        while True:
            try:
                return make()
            except (peewee.OperationalError, sqlite3.OperationalError) as exc:
                if not self.readonly and self._file_identity() is None:
                    raise self._deleted() from None
                if not is_locked_error(exc):
                    raise self._translate(exc) from None
                give_up = give_up or time.monotonic() + self.options.write_deadline
                if time.monotonic() >= give_up:
                    raise self._translate(exc) from None
                drop()
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.2)
            except (peewee.DatabaseError, sqlite3.DatabaseError) as exc:
                raise self._translate(exc) from None

    def _writer_connection(self) -> sqlite3.Connection:
        """The connection writes run on (caller holds the write lock), opened on first use."""
        slot = self._writer
        if slot is self._local:  # one connection for every thread: it writes too
            return slot.conn or self.connection()
        conn = slot.conn
        if conn is None:
            # Outside peewee's per-thread state: every writing thread uses it in turn.
            conn = slot.conn = self._open(self.peewee._connect, lambda: None)
            slot.identity = self._file_identity()
        return conn

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._stat_path)
        except OSError:  # missing, or a path that cannot exist: opening will say why
            return None
        return st.st_dev, st.st_ino

    def _check_file(self) -> None:
        """Reopen the writer's connection when the file was replaced under it (caller
        holds the write lock); the other connections of the process follow at their
        next use.

        A restore from backup swaps the file; a connection still open on the old
        one would write where no worker reads. A deleted file is refused.

        Raises:
            DatabaseUnavailable: the file was deleted; nothing was written.
        """
        slot = self._writer
        if self.readonly or slot.conn is None:
            return
        watch = self._watch
        if watch is None:
            watch = self._watch = FileWatch(self._stat_path)
        events = watch.events()
        if events is not None and events == slot.events:
            return  # nothing happened to the file since the writer last looked
        watch.arm()  # the file the path names now: a swap after this look is heard
        now = self._file_identity()
        if now == slot.identity:
            slot.events = events
            return
        if now is None:
            raise self._deleted()
        logger.warning("%s was replaced (a restore?); reopening it", self.path)
        self._generation += 1  # every thread's connection is opened again at its next use
        self._close_writer()
        self._writer_connection()
        slot.events = events
        if now != self._identity:
            self._identity = now
            for hook in list(self.on_replaced):
                hook(self)

    def refresh(self) -> None:
        """Before a read of a long-lived handle: end a snapshot left open, and reopen
        when the file was replaced (a read-only handle never writes, so
        :meth:`_check_file` does not run for it on its own).

        Raises:
            DatabaseUnavailable: the file is gone.
        """
        now = self._file_identity()
        if now is None:
            self._close_thread()
            raise DatabaseUnavailable(f"{self.path}: no such database file")
        conn = self._local.conn
        if conn is None:
            return
        if now != self._local.identity:
            self._close_thread()
            return
        if conn.in_transaction:  # never carry a snapshot into the next read
            conn.rollback()

    def close(self) -> None:
        """Close this thread's connection and the writer's (the other threads' close with
        their threads)."""
        self._close_thread()
        if self._writer is not self._local:
            with self._write_lock:
                self._close_writer()

    def _close_thread(self) -> None:
        """Close this thread's connection."""
        self._local.conn = None
        if not self.peewee.is_closed():
            self.peewee.close()

    def _close_writer(self) -> None:
        """Close the writer's connection (caller holds the write lock)."""
        slot = self._writer
        if slot is self._local:
            self._close_thread()
            return
        conn, slot.conn, slot.deferring = slot.conn, None, None
        if conn is not None:
            conn.close()

    def _deleted(self) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"{self.path}: the database file was deleted while open; nothing was written "
            "(restore the file or restart this process)")

    def _read_only(self) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"{self.path} is read-only for this user (uid {os.geteuid()}): "
            f"{write_refusal(self.path)}; the worker and producers need write access to the "
            "file and its directory (nothing was written)")

    def _translate(self, exc: BaseException) -> Exception:
        if is_readonly_error(exc):
            return self._read_only()
        if is_corrupt_error(exc):
            return DatabaseCorrupt(
                f"{self.path}: {exc}; move the file aside and restore a backup, "
                f"or try `sqlite3 {self.path} .recover`")
        if is_locked_error(exc):
            return DatabaseLocked(f"{self.path}: {exc}")
        return DatabaseUnavailable(f"{self.path}: cannot open the database ({exc})")

    # -- reads and writes --------------------------------------------------

    def query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """Run a read and fetch every row, so no cursor keeps a snapshot open."""
        conn = self.connection()
        if self.absorb_needed is not None and not conn.in_transaction:
            self.absorb_if_free(conn)
        try:
            cursor = conn.execute(sql, params)
            try:
                return cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.DatabaseError as exc:
            if is_corrupt_error(exc):
                raise self._translate(exc) from None
            raise

    def write(self, fn: Callable[[sqlite3.Connection], T], *,
              deadline: float | None = None, absorb: bool = True) -> T:
        """Run ``fn(conn)`` inside one ``BEGIN IMMEDIATE`` transaction, after moving the
        jobs of the intake into ``runner_job`` (unless ``absorb`` is False: the enqueue
        that may write into the intake does it itself when it must).

        The whole function is retried while the database is locked, until
        ``deadline`` seconds (default ``write_deadline``) have passed.

        Raises:
            DatabaseLocked: the lock was not had in time; nothing was written.
        """
        def transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if absorb and self.absorb is not None:
                    self.absorb(conn)
                result = fn(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return self._locked(transaction, deadline)

    def write_one(self, sql: str, params: tuple) -> int:
        """Run one writing statement as a transaction of its own; returns its row count.

        SQLite takes the write lock for a lone statement as ``BEGIN IMMEDIATE`` would,
        with the same busy wait, and commits when it ends: the same as :meth:`write`
        of that statement without the two statements around it, which cost a single
        enqueue about a tenth of its time. Nothing is moved out of the intake first.

        Raises:
            DatabaseLocked: the lock was not had within ``write_deadline``; nothing
                was written.
        """
        return self._locked(lambda conn: conn.execute(sql, params).rowcount, None)

    def _locked(self, run: Callable[[sqlite3.Connection], T], deadline: float | None) -> T:
        """``run(conn)`` under this process's write lock, tried again while the database
        is locked until ``deadline`` seconds (default ``write_deadline``) pass; SQLite's
        errors become this package's."""
        limit = self.options.write_deadline if deadline is None else deadline
        give_up = time.monotonic() + limit
        busy = self.options.busy_timeout
        delay = 0.005
        while True:
            try:
                with self._write_lock:
                    self._check_file()
                    conn = self._writer.conn or self._writer_connection()
                    if (self._writer.deferring is conn) is not self.deferred_checkpoints:
                        self._set_autocheckpoint(conn)
                    remaining = give_up - time.monotonic()  # the lock above may have waited
                    local = self._local
                    outer, local.writing = local.writing, conn  # reads inside it run on it
                    try:
                        if remaining >= busy:
                            result = run(conn)
                        else:  # SQLite's own busy wait must not outlast the deadline
                            result = self._cut_short(run, conn, remaining)
                    finally:
                        local.writing = outer
                    self.commits += 1
                    return result
            except sqlite3.OperationalError as exc:
                if not is_locked_error(exc):
                    if is_corrupt_error(exc) or is_readonly_error(exc):
                        raise self._translate(exc) from None
                    if is_disk_error(exc):
                        raise DiskFull(f"{self.path}: {exc}; nothing was written") from None
                    raise
                if time.monotonic() >= give_up:
                    raise DatabaseLocked(
                        f"{self.path}: database stayed locked for {limit:g}s; nothing was "
                        "written (another process holds the write lock)") from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.2)
            except sqlite3.DatabaseError as exc:
                if is_corrupt_error(exc):
                    raise self._translate(exc) from None
                raise

    def _cut_short(self, run: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection,
                   remaining: float) -> T:
        """``run(conn)`` with SQLite's busy wait for the write lock cut to ``remaining`` s."""
        conn.execute(f"PRAGMA busy_timeout = {max(0, int(remaining * 1000))}")
        try:
            return run(conn)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.options.busy_timeout * 1000)}")

    def _set_autocheckpoint(self, conn: sqlite3.Connection) -> None:
        """Before a commit, which checkpoints unless turned off: on each connection as
        the checkpointer starts and stops."""
        deferring = self.deferred_checkpoints
        conn.execute(f"PRAGMA wal_autocheckpoint = {0 if deferring else 1000}")
        self._writer.deferring = conn if deferring else None

    def outside_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in autocommit mode, holding this process's write lock
        (``VACUUM`` cannot run inside a transaction).

        Raises:
            DatabaseLocked: another process held the database past ``busy_timeout``.
            DiskFull: there was no room for the work.
        """
        with self._write_lock:
            conn = self.connection()
            try:
                return fn(conn)
            except sqlite3.OperationalError as exc:
                if is_locked_error(exc):
                    raise DatabaseLocked(f"{self.path}: {exc}") from None
                if is_disk_error(exc):
                    raise DiskFull(f"{self.path}: {exc}") from None
                if is_readonly_error(exc):
                    raise self._read_only() from None
                raise

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold this process's write lock: none of its threads commits meanwhile."""
        with self._write_lock:
            yield

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for several reads; the caller fetches all rows of each."""
        conn = self.connection()
        if self.absorb_needed is not None and not conn.in_transaction:
            self.absorb_if_free(conn)
        yield conn

    def absorb_if_free(self, conn: sqlite3.Connection | None = None) -> None:
        """Move the jobs of the intake into ``runner_job`` (before a read), when there are
        any and the write lock is free at once: a read never waits for the lock (it
        then reads without them, as it would have a moment before they were written)."""
        if self.absorb_needed is None or self.absorb is None:
            return
        if not self.absorb_needed(conn or self.connection()):
            return
        if not self._write_lock.acquire(blocking=False):  # another thread of ours writes
            return
        try:
            # No wait for another process's lock either; nor a write this user may not make.
            self.write(self.absorb, deadline=0, absorb=False)
        except (DatabaseLocked, DiskFull, DatabaseUnavailable):
            pass
        finally:
            self._write_lock.release()


class _PerThread(threading.local):
    """Where each thread's connection, and the identity of its file, are kept (peewee
    keeps the connection too, behind a lock and two calls: every write asks for it)."""

    conn: sqlite3.Connection | None = None
    identity: tuple[int, int] | None = None
    #: The writer's connection while this thread writes (its reads then run on it).
    writing: sqlite3.Connection | None = None
    #: :attr:`Database._generation` when the connection was opened.
    generation: int = 0


class _Shared:
    """Where a shared connection and its file's identity are kept (every thread sees the
    same): the writer's, and the dashboard's one connection."""

    conn: sqlite3.Connection | None = None
    identity: tuple[int, int] | None = None
    #: The file's :meth:`FileWatch.events` when the writer last read its identity.
    events: int | None = None
    #: The connection the writer last turned ``wal_autocheckpoint`` off on.
    deferring: sqlite3.Connection | None = None
    writing: sqlite3.Connection | None = None
    generation: int = 0


def _initialize_new_file(path: Path, busy_timeout: float) -> None:
    """Give an empty file incremental auto_vacuum, then WAL mode.

    SQLite takes ``auto_vacuum`` only on a file without tables, outside a
    transaction, and before WAL mode is on; later it needs a full VACUUM. Setting
    it takes the write lock, so it is done once here, not on every connection.
    """
    # Short wait: once another process has written the file, this is moot (and a
    # worker's start switches a file that missed it), so never queue behind its writes.
    conn = sqlite3.connect(path, timeout=min(busy_timeout, 0.5), isolation_level=None)
    try:
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = wal")
    except sqlite3.OperationalError as exc:
        # Another process already wrote to the file: a worker's start switches it later.
        logger.debug("%s: auto_vacuum not set on creation: %s", path, exc)
    finally:
        conn.close()


#: Every Database of the process, for a forked child to forget their connections.
_open_databases: weakref.WeakSet[Database] = weakref.WeakSet()
#: What a forked child inherited: kept, never used nor closed (SQLite forbids using a
#: connection across fork, and closing one there could drop the parent's locks).
_inherited: list[object] = []


def _forget_after_fork() -> None:
    for db in list(_open_databases):
        _inherited.append((db._local, db._writer, db.peewee._state))
        db._write_lock = threading.RLock()  # another thread may have held it at the fork
        if isinstance(db._local, _Shared):
            db._local = db._writer = _Shared()
        else:
            db._local, db._writer = _PerThread(), _Shared()
        db.peewee._state = type(db.peewee._state)()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


_open: dict[tuple[str, bool], Database] = {}
_open_lock = threading.Lock()


def open_database(path: str | Path, options: DatabaseSection | None = None, *,
                  readonly: bool = False, file_mode: int = DEFAULT_FILE_MODE) -> Database:
    """The process-wide :class:`Database` for a file (one per path and mode)."""
    key = (str(Path(path).absolute()), readonly)
    with _open_lock:
        db = _open.get(key)
        if db is None or (options is not None and db.options != options):
            db = _open[key] = Database(path, options, readonly=readonly, file_mode=file_mode)
        return db


def contains_pattern(text: str) -> str:
    """A ``LIKE ? ESCAPE '\\'`` pattern matching ``text`` anywhere, ``%`` and ``_`` literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def lookup_id(db: Database, table: str, columns: str, ident: str) -> tuple | None:
    """The row whose id is ``ident``, or starts or ends with it (unique), or None.

    Ids are time-ordered, so rows made in the same minute share a prefix; the
    end of an id is random and makes a good short form (the CLI shows it).

    Raises:
        AmbiguousId: the shortened id matches several rows.
    """
    rows = db.query(f"SELECT {columns} FROM {table} WHERE id = ?", (ident,))
    if not rows and len(ident) >= 4:
        rows = db.query(f"SELECT {columns} FROM {table} WHERE id >= ? AND id < ? LIMIT 2",
                        (ident, ident + "\uffff"))
    if not rows and len(ident) >= 6:
        rows = db.query(f"SELECT {columns} FROM {table} WHERE id LIKE ? LIMIT 2",
                        ("%" + ident.replace("%", "").replace("_", ""),))
    if len(rows) > 1:
        raise AmbiguousId(ident)
    return rows[0] if rows else None


