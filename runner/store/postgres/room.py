"""PostgreSQL: producers blocked at a full queue wait for room with ``LISTEN``.

A blocked producer opens a connection of its own, named by its
``application_name``, and listens on the database's room channel; a worker
that claimed jobs sends ``NOTIFY`` there, but only while such a connection
exists (a look at ``pg_stat_activity`` at most a few times a second), so
claims cost nothing extra while no producer waits. Notifications wait in the
producer's connection until it reads them: none is lost between two looks.
"""

from __future__ import annotations

import logging
import time

import psycopg

from runner.store.handle import RoomWaiter
from runner.store.postgres.connection import PgDatabase

logger = logging.getLogger(__name__)

#: Seconds a worker trusts its last look for waiting producers.
RECHECK = 0.25


def room_channel(db: PgDatabase) -> str:
    """The channel (and the waiters' ``application_name``) of this database and schema."""
    return f"{db.channel[:57]}_room"


class ListenWaiter:
    """One blocked producer's connection (a :class:`runner.store.handle.RoomWaiter`)."""

    def __init__(self, db: PgDatabase) -> None:
        channel = room_channel(db)
        self._conn = psycopg.connect(db.url, autocommit=True, connect_timeout=10,
                                     application_name=channel)
        self._conn.execute(f'LISTEN "{channel}"')

    def wait(self, timeout: float) -> bool:
        woke = False
        for _ in self._conn.notifies(timeout=max(timeout, 0.001), stop_after=1):
            woke = True
        if woke:
            for _ in self._conn.notifies(timeout=0.001):
                pass  # a burst of wake-ups is one
        return woke

    def close(self) -> None:
        self._conn.close()


class PgRoom:
    """:meth:`made_room` and :meth:`room_waiter` of :class:`runner.store.handle.StoreHandle`."""

    db: PgDatabase
    _room_checked_at = -RECHECK
    _room_waiting = False

    def made_room(self) -> None:
        try:
            channel = room_channel(self.db)
            now = time.monotonic()
            if now - self._room_checked_at >= RECHECK:
                self._room_waiting = bool(self.db.query(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = %s LIMIT 1",
                    (channel,)))
                self._room_checked_at = now
            if self._room_waiting:
                self.db.query("SELECT pg_notify(%s, '')", (channel,))
        except Exception:  # a wake-up is an optimisation; the producer's poll covers it
            logger.debug("room wake-up not sent", exc_info=True)

    def room_waiter(self) -> RoomWaiter | None:
        try:
            return ListenWaiter(self.db)
        except psycopg.Error:
            return None
