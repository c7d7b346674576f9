"""Pooled connections to a PostgreSQL jobs database: transactions, retries, error mapping.

One :class:`PgDatabase` per database URL per process. Connections come from a
psycopg pool sized to the worker's threads; each write is one transaction,
retried with backoff when PostgreSQL aborts it for a reason a retry gets past
(a deadlock, a serialization failure, a lost connection), until a deadline.
The schema a store works in is the connection's ``search_path`` (a URL may
set it with ``?options=-csearch_path%3Dname``); wake-ups use a ``LISTEN``
channel named after the database and that schema.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from runner.errors import ConfigError, DatabaseLocked, DatabaseUnavailable, DiskFull

logger = logging.getLogger(__name__)

# The pool warns of every failed connection attempt; the store reports the outcome itself
# (retrying, then DatabaseUnavailable naming the server). Where nothing configured
# logging (the CLI, the dashboard), Python would print each warning to stderr, around
# the one line that says what is wrong; a worker's handlers still get them.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

T = TypeVar("T")

#: Aborts a retry of the whole transaction gets past.
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected,
              pg_errors.LockNotAvailable)
#: Default seconds a write keeps retrying before it gives up (nothing written).
WRITE_DEADLINE = 30.0


def lock_key(name_sql: str) -> str:
    """The advisory lock key of a name (an SQL expression), hashed with the current
    schema: advisory locks are database-wide, and runners in two schemas of one
    database must never hold each other back."""
    return f"hashtextextended(current_schema() || ' ' || {name_sql}, 0)"


def is_postgres_url(text: str) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) database URL."""
    return str(text).startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs (a malformed one too)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL urllib can read (a host in brackets left open)
        scheme, _, rest = url.partition("://")
        credentials, at, host = rest.rpartition("@")
        if not at or ":" not in credentials:
            return url
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def check_url(url: str) -> None:
    """Refuse a URL no connection can ever be made with, before any is tried.

    Raises:
        ConfigError: libpq cannot read the URL, or a port is not a number.
    """
    shown = redacted(url)
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:  # libpq quotes the URL, password and all
        problem = str(exc).strip().replace(url, shown)
        raise ConfigError(f"[runner] database / RUNNER_DATABASE {shown}: not a valid "
                          f"PostgreSQL URL ({problem})") from None
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ConfigError(f"[runner] database / RUNNER_DATABASE {shown}: port {port!r} "
                              "is not a port number (1-65535)")


class PgDatabase:
    """The jobs database at one PostgreSQL URL, shared by every thread of a process.

    Args:
        url: a libpq URL (``postgresql://user@host:5432/dbname``).
        pool_size: connections kept at most (the worker's threads plus its helpers).
        connect_timeout: seconds to wait for the server at start-up.
        lock_wait: seconds a statement waits for a lock another session holds, then
            :class:`DatabaseLocked` (see :attr:`runner.store.backend.StoreRequest.lock_wait`);
            None waits as long as the lock is held.

    Raises:
        ConfigError: the URL is malformed (see :func:`check_url`).
    """

    def __init__(self, url: str, *, pool_size: int = 4, connect_timeout: float = 10.0,
                 lock_wait: float | None = None) -> None:
        check_url(url)
        self.url = url
        self.lock_wait = lock_wait
        self.display = redacted(url)
        self.pool_size = max(2, pool_size)
        self._connect_timeout = connect_timeout
        self._pool = self._new_pool()
        self._open_lock = threading.Lock()
        self._opened = False
        self.schema = ""
        self.database = ""
        self._channel = ""
        #: Transactions PostgreSQL aborted (deadlock, serialization) and this retried.
        self.retries = 0
        #: Sends wake-ups after enqueues commit (:func:`runner.store.postgres.wakeup.notify_soon`).
        self.notifier: Any = None
        #: Whether this process's wake-up connection listens (revocations are heard).
        self.listening = False
        # Moves on whenever a revocation may have been written (here, or on any host while
        # this process listens), or the wake-up connection (re)connects or is lost ...
        self._revoke_epoch = 0
        # ... and the epoch in which a claim found no revocation in the database.
        self._no_revocations_epoch: int | None = None
        self._revoke_lock = threading.Lock()

    def _new_pool(self) -> psycopg_pool.ConnectionPool:
        return psycopg_pool.ConnectionPool(
            self.url, min_size=1, max_size=self.pool_size, open=False, name="runner",
            kwargs={"autocommit": True}, timeout=self._connect_timeout,
            reconnect_timeout=self._connect_timeout,
            configure=None if self.lock_wait is None else self._bound_lock_waits)

    def _bound_lock_waits(self, conn: psycopg.Connection) -> None:
        # lock_timeout, not statement_timeout: a slow read is still answered, only a wait
        # on another session's lock is cut short. 0 would mean no bound at all.
        conn.execute(f"SET lock_timeout = {max(1, round(self.lock_wait * 1000))}")

    @property
    def path(self) -> Path:
        """The URL (without password) as a path-like name for messages."""
        return Path(self.display)

    @property
    def channel(self) -> str:
        """The ``LISTEN``/``NOTIFY`` channel of this database and schema."""
        self._ensure_open()
        return self._channel

    # -- connections ---------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._opened:
            return
        with self._open_lock:
            if self._opened:
                return
            timeout = self._pool.timeout
            first = min(_FIRST_WAIT, timeout)
            try:
                self._pool.open(wait=True, timeout=first)
            except psycopg_pool.PoolTimeout:
                # Not ready at once. A server that answers "no such database" (or role, or
                # a wrong password) will answer it again: said now; an outage is waited out.
                self._pool = self._new_pool()  # a closed pool cannot open again
                refusal = _permanent_refusal(self._why_not())
                if refusal is not None:
                    raise self._refused(refusal) from None
                try:
                    self._pool.open(wait=True, timeout=max(0.0, timeout - first))
                except psycopg_pool.PoolTimeout:
                    self._pool = self._new_pool()  # the next try
                    raise self._unreachable(timeout, self._why_not()) from None
            with self._pool.connection() as conn:
                self.database, self.schema = conn.execute(
                    "SELECT current_database(), current_schema()").fetchone()
            self._channel = re.sub(r"\W", "_", f"runner_{self.database}_{self.schema}")[:63]
            self._opened = True

    def reach(self, seconds: float) -> None:
        """Connect once within ``seconds`` (the pool is left alone), or raise.

        Raises:
            DatabaseUnavailable: no connection within ``seconds``, with what the server
                or the network said.
        """
        why = self._why_not(max(1, math.ceil(seconds)))
        refusal = _permanent_refusal(why)
        if refusal is not None:
            raise self._refused(refusal)
        if why is not None:
            raise self._unreachable(seconds, why)

    def _why_not(self, seconds: int = 2) -> str | None:
        """What one more connection attempt is told (the database or role does not exist,
        the password is wrong, the connection is refused), for the error message; None
        when it connects."""
        try:
            psycopg.connect(self.url, autocommit=True, connect_timeout=seconds).close()
        except psycopg.Error as exc:
            lines = str(exc).strip().splitlines()
            return f" ({lines[0].replace(self.url, self.display)})" if lines else ""
        return None

    def _refused(self, refusal: str) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"{self.display}: PostgreSQL refused the connection: {refusal}; is the URL right "
            "([runner] database / RUNNER_DATABASE)?")

    def _unreachable(self, seconds: float, why: str | None) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"{self.display}: cannot connect to PostgreSQL within {seconds:g}s{why or ''}; is "
            "the server up and the URL right ([runner] database / RUNNER_DATABASE)?")

    def connect(self) -> psycopg.Connection:
        """A dedicated connection outside the pool (the ``LISTEN`` loop); the caller closes it."""
        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    # -- what this process knows of revocations (see runner.store.postgres.key_values) ------

    def revocation_epoch(self) -> int:
        """The current epoch, read before a claim looks for revocations."""
        return self._revoke_epoch

    def revocations_may_have_changed(self) -> None:
        """A revocation may have been written: forget that there were none."""
        with self._revoke_lock:
            self._revoke_epoch += 1
            self._no_revocations_epoch = None

    def claim_found_revocations(self, epoch: int, found: bool) -> None:
        """A claim begun in ``epoch`` looked for revocations: remember if it found none and
        nothing may have changed since (only while listening: else changes go unheard)."""
        with self._revoke_lock:
            if not found and self.listening and epoch == self._revoke_epoch:
                self._no_revocations_epoch = epoch

    def knows_no_revocations(self) -> bool:
        """True when no revocation exists as far as this process can tell without a read."""
        return self.listening and self._no_revocations_epoch == self._revoke_epoch

    def close(self) -> None:
        """Close every pooled connection; the next use opens the pool again."""
        if self.notifier is not None:
            self.notifier.flush()  # wake-ups owed go out before their connection closes
        with self._open_lock:
            self._pool.close()
            self._pool = self._new_pool()
            self._opened = False

    # -- reads and writes ----------------------------------------------------

    def query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """Run a read and fetch every row (retried while the connection is lost).

        Raises:
            DatabaseLocked: (with a ``lock_wait``) another session held a lock past it.
        """
        return self._run(lambda conn: conn.execute(sql, params).fetchall(), WRITE_DEADLINE,
                         transaction=False)

    def write(self, fn: Callable[[psycopg.Connection], T], *,
              deadline: float | None = None, single: bool = False) -> T:
        """Run ``fn(conn)`` inside one transaction, retried as a whole while that helps.

        With ``single``, ``fn`` runs one statement, which commits by itself: one
        round trip instead of three (no BEGIN, no COMMIT).

        Raises:
            DatabaseLocked: deadlocks or serialization failures outlasted the deadline, or
                (with a ``lock_wait``) another session held a lock past it.
            DatabaseUnavailable: the server stayed unreachable past the deadline.
        """
        return self._run(fn, WRITE_DEADLINE if deadline is None else deadline,
                         transaction=not single)

    def _run(self, fn: Callable[[psycopg.Connection], T], limit: float, *,
             transaction: bool) -> T:
        self._ensure_open()
        give_up = time.monotonic() + limit
        delay = 0.01
        while True:
            try:
                with self._pool.connection() as conn:
                    if not transaction:
                        return fn(conn)
                    with conn.transaction():
                        return fn(conn)
            except _RETRYABLE as exc:
                if self.lock_wait is not None and isinstance(exc, pg_errors.LockNotAvailable):
                    raise self._lock_held() from None
                self.retries += 1
                logger.debug("%s: %s; retrying the transaction", self.display, exc)
                if time.monotonic() >= give_up:
                    raise DatabaseLocked(
                        f"{self.display}: {exc.__class__.__name__} for {limit:g}s; "
                        "nothing was written") from None
            except pg_errors.DiskFull as exc:
                raise DiskFull(f"{self.display}: {exc}; nothing was written") from None
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
                if isinstance(exc, psycopg.errors.QueryCanceled):
                    raise
                if time.monotonic() >= give_up:
                    raise DatabaseUnavailable(
                        f"{self.display}: the connection was lost and not regained within "
                        f"{limit:g}s ({exc}); nothing was written") from None
                logger.warning("%s: connection lost (%s); retrying in %.2fs",
                               self.display, exc, delay)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)

    def _lock_held(self) -> DatabaseLocked:
        return DatabaseLocked(
            f"{self.display}: waited {self.lock_wait:g}s for a lock another session holds "
            "([database] busy_timeout); nothing was written. Try again once it is released "
            "(pg_stat_activity shows the sessions, pg_locks what they hold)")


#: Seconds the pool is given to connect before a refusal that will not change is looked
#: for (a healthy server connects within them: no connection more at every start).
_FIRST_WAIT = 1.0

#: What a server answers that a retry will not change: it is up and reached, and the URL
#: (or the role's rights) is wrong. psycopg gives a refused connection no SQLSTATE, so the
#: server's words are read (the English ones: another language is waited out as before).
_PERMANENT = re.compile(r"FATAL:\s+((?:database|role) \"[^\"]*\" does not exist|password "
                        r"authentication failed[^\n]*|no pg_hba\.conf entry[^\n]*)")


def _permanent_refusal(why: str | None) -> str | None:
    """The server's permanent refusal in ``why`` (see :data:`_PERMANENT`), or None."""
    found = _PERMANENT.search(why or "")
    return found.group(1) if found else None


_open: dict[tuple[str, float | None], PgDatabase] = {}
_open_lock = threading.Lock()


def open_pg_database(url: str, *, pool_size: int = 4,
                     lock_wait: float | None = None) -> PgDatabase:
    """The process-wide :class:`PgDatabase` of a URL and lock wait (one per pair)."""
    key = (url, lock_wait)
    with _open_lock:
        db = _open.get(key)
        if db is None or db.pool_size < pool_size:
            if db is not None:
                db.close()
            db = _open[key] = PgDatabase(url, pool_size=pool_size, lock_wait=lock_wait)
        return db
