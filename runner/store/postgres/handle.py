"""PostgreSQL: the open handle: the database, closing, LISTEN/NOTIFY wake-ups, data_version.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.handle`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.room import PgRoom
from runner.store.postgres.schedule_store import data_version
from runner.store.postgres.wakeup import Listener, notify_soon

logger = logging.getLogger(__name__)

#: Seconds after an enqueue (which has a wake-up sent) in which another is moot.
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
    def address(self) -> str:
        return self.db.url

    @property
    def readonly(self) -> bool:
        return self._readonly

    def close(self) -> None:
        self.db.close()

    def wakeup(self) -> None:
        if time.monotonic() - self._notified < _NOTIFIED_RECENTLY:
            return  # the enqueue just before had a wake-up sent
        notify_soon(self.db)

    def offload_checkpoints(self) -> Callable[[], None] | None:
        return None  # the server keeps its own log

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None] | None:
        listener = Listener(self.db, on_wake)
        return listener.stop if listener.start() else None

    def intake_waiting(self) -> bool:
        return False

    def absorb_intake(self) -> None:
        return None

    def set_queue_weights(self, weights: Mapping[str, int]) -> None:
        return None

    def refresh(self) -> None:
        pass  # each read sees the latest commits (READ COMMITTED)

    def data_version(self) -> int:
        return data_version(self.db)
