"""Wake-ups on PostgreSQL: ``LISTEN`` on the database's channel, on every host.

An enqueue sends ``NOTIFY`` inside its own transaction (see
:mod:`runner.store.postgres.transitions`), so nothing is sent after the commit.
A worker's :class:`Listener` holds one connection outside the pool; a lost
connection is logged and retried with backoff (never a crash loop), the
worker's ``poll_interval`` covering the gap, and after reconnecting it wakes
the workers once, as a notification may have been missed meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from runner.store.postgres.connection import PgDatabase

logger = logging.getLogger(__name__)


class Listener:
    """A thread that calls ``on_wake`` once per burst of notifications."""

    def __init__(self, db: PgDatabase, on_wake: Callable[[], None]) -> None:
        self.db = db
        self.on_wake = on_wake
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        self._thread = threading.Thread(target=self._run, name="runner-listen", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(3.0)

    def _run(self) -> None:
        delay = 0.5
        channel = self.db.channel
        while not self._stopping.is_set():
            try:
                with self.db.connect() as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    if delay > 0.5:
                        logger.warning("%s: listening for wake-ups again", self.db.display)
                        self.on_wake()
                    delay = 0.5
                    while not self._stopping.is_set():
                        woke = False
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            woke = True
                        if woke:
                            self.on_wake()
            except psycopg.Error as exc:
                if self._stopping.is_set():
                    return
                logger.warning("%s: wake-up connection lost (%s); polling meanwhile, "
                               "reconnecting in %.1fs", self.db.display, exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)
