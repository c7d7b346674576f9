"""Wake-ups on PostgreSQL: ``LISTEN`` on the database's channel, on every host.

An enqueue asks a :class:`Notifier` thread to send ``NOTIFY`` once it has
committed (enqueues from a worker's own transitions notify inside them). A
worker's :class:`Listener` holds one connection outside the pool; a lost
connection is logged and retried with backoff (never a crash loop), the
worker's ``poll_interval`` covering the gap, and after reconnecting it wakes
the workers once, as a notification may have been missed meanwhile.

While it listens, a process also hears of revocations written on any host
(:data:`REVOKED`), so reads of revocations can be answered without a round
trip when the last claim found none (:mod:`runner.store.postgres.kv`).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

import psycopg

from runner.store.postgres.connection import PgDatabase

logger = logging.getLogger(__name__)


#: The payload of the notification a revocation's write sends (see :mod:`.kv`).
REVOKED = "revoke"
#: The start of a listener's stop notification: listeners act only on their own.
STOP = "stop "
#: Seconds a listener waits for a notification before it looks at its stop flag again
#: (a stop notifies the listener itself, so this bounds only a lost one).
RECEIVE_TIMEOUT = 1.0


class Listener:
    """A thread that calls ``on_wake`` once per burst of notifications."""

    def __init__(self, db: PgDatabase, on_wake: Callable[[], None]) -> None:
        self.db = db
        self.on_wake = on_wake
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop_payload = STOP + os.urandom(8).hex()

    def start(self) -> bool:
        self._thread = threading.Thread(target=self._run, name="runner-listen", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop listening; the thread waits for a notification, so it is sent its own
        stop notification rather than left to sit out the receive timeout."""
        self._stopping.set()
        if self._thread is not None:
            if self.db.listening:
                try:
                    with self.db.connect() as conn:
                        conn.execute("SELECT pg_notify(%s, %s)",
                                     (self.db.channel, self._stop_payload))
                except psycopg.Error:
                    pass  # the timeout ends the wait instead
            self._thread.join(3.0)
        self.db.listening = False
        self.db.revocations_may_have_changed()

    def _run(self) -> None:
        delay = 0.5
        channel = self.db.channel
        while not self._stopping.is_set():
            try:
                with self.db.connect() as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    self.db.listening = True
                    self.db.revocations_may_have_changed()  # those before now went unheard
                    if delay > 0.5:
                        logger.warning("%s: listening for wake-ups again", self.db.display)
                        self.on_wake()
                    delay = 0.5
                    while not self._stopping.is_set():
                        woke = False
                        for note in conn.notifies(timeout=RECEIVE_TIMEOUT, stop_after=1):
                            if note.payload.startswith(STOP):
                                continue  # a listener's stop: ours ends the loop below
                            woke = True
                            if note.payload == REVOKED:
                                self.db.revocations_may_have_changed()
                        if woke and not self._stopping.is_set():
                            self.on_wake()
                self.db.listening = False
            except psycopg.Error as exc:
                self.db.listening = False
                self.db.revocations_may_have_changed()
                if self._stopping.is_set():
                    return
                logger.warning("%s: wake-up connection lost (%s); polling meanwhile, "
                               "reconnecting in %.1fs", self.db.display, exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)


class Notifier:
    """A thread that sends ``NOTIFY`` after enqueues commit, one at a time, coalesced.

    A ``NOTIFY`` inside the enqueue's transaction would hold PostgreSQL's
    cluster-wide notification lock from its commit record until the disk
    confirmed it, so producers in several processes committed one after the
    other. Sent here, after the commit, in a transaction of its own that does not
    wait for the disk (a lost wake-up only costs a poll), the lock is held for
    microseconds; the enqueuer does not wait for it at all, and enqueues made
    while one is in flight share the next.
    """

    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        self._cond = threading.Condition()
        self._pending = False
        self._sending = False
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """Wake the listening workers of every host soon (this returns at once)."""
        with self._cond:
            self._pending = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="runner-notify",
                                                daemon=True)
                self._thread.start()
            else:
                self._cond.notify()

    def flush(self, timeout: float = 1.0) -> None:
        """Wait until the wake-ups asked for so far are sent (a producer about to exit)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._sending:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return
                self._cond.wait(left)

    def _run(self) -> None:
        statement = (f"BEGIN; SET LOCAL synchronous_commit = off; "
                     f"NOTIFY \"{self.db.channel}\"; COMMIT")
        while True:
            with self._cond:
                if not self._pending:
                    self._cond.notify_all()  # flush() waiters
                    if not self._cond.wait_for(lambda: self._pending, _IDLE_EXIT):
                        self._thread = None
                        return
                self._pending = False
                self._sending = True
            try:
                self.db.write(lambda conn: conn.execute(statement), single=True, deadline=1.0)
            except Exception:  # a wake-up is an optimisation; the poll covers a lost one
                logger.debug("wake-up not sent", exc_info=True)
            finally:
                with self._cond:
                    self._sending = False


#: Seconds a notifier thread waits for the next enqueue before it ends.
_IDLE_EXIT = 30.0
_notifiers_lock = threading.Lock()
_exiting: weakref.WeakSet[Notifier] = weakref.WeakSet()


def notify_soon(db: PgDatabase) -> None:
    """Have the workers listening on ``db``'s channel woken by a thread, after the commit
    the caller just made."""
    notifier = db.notifier
    if notifier is None:
        with _notifiers_lock:
            notifier = db.notifier
            if notifier is None:
                notifier = db.notifier = Notifier(db)
                if not _exiting:
                    atexit.register(_flush_all)
                _exiting.add(notifier)
    notifier.poke()


def _flush_all() -> None:
    """At exit: send the wake-ups still owed, so the last jobs enqueued start at once."""
    for notifier in list(_exiting):
        notifier.flush()
