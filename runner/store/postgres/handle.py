"""PostgreSQL: the open handle: the database, closing, LISTEN/NOTIFY wake-ups, data_version.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.handle`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from runner.store.postgres import transitions as _transitions
from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.room import PgRoom
from runner.store.postgres.schedule_store import data_version
from runner.store.postgres.wakeup import Listener

logger = logging.getLogger(__name__)

#: Seconds after an enqueue (which notifies in its transaction) in which a wake-up is moot.
_NOTIFIED_RECENTLY = 0.05


class PostgresHandle(PgRoom):
    """:class:`runner.store.handle.StoreHandle` on a PostgreSQL database (room wake-ups:
    :mod:`.room`)."""

    def __init__(self, db: PgDatabase, *, readonly: bool = False) -> None:
        self.db = db
        self._readonly = readonly
        self._notified = 0.0

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def location(self) -> str:
        return self.db.display

    @property
    def readonly(self) -> bool:
        return self._readonly

    def close(self) -> None:
        self.db.close()

    def wakeup(self) -> None:
        if time.monotonic() - self._notified < _NOTIFIED_RECENTLY:
            return  # the enqueue just before sent NOTIFY in its own transaction
        try:
            channel = self.db.channel
            self.db.write(lambda conn: _transitions.notify(conn, channel), single=True,
                          deadline=1.0)
        except Exception:  # a wake-up is an optimisation; the poll covers a lost one
            logger.debug("wake-up not sent", exc_info=True)

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None] | None:
        listener = Listener(self.db, on_wake)
        return listener.stop if listener.start() else None

    def refresh(self) -> None:
        pass  # each read sees the latest commits (READ COMMITTED)

    def data_version(self) -> int:
        return data_version(self.db)
