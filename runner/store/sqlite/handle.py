"""SQLite: the open handle: the file, closing, Unix-socket wake-ups (of workers, and of
producers waiting for room), data_version.

The SQLite side of :mod:`runner.store.handle`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

from runner.store.handle import RoomWaiter
from runner.store.sqlite import schedules as _schedules
from runner.store.sqlite.checkpointer import Checkpointer
from runner.store.sqlite.db import Database
from runner.store.sqlite.room import RoomNotifier, room_waiter
from runner.store.sqlite.transitions import intake as _intake
from runner.store.sqlite.wakeup import Listener, Notifier


class SqliteHandle:
    """:class:`runner.store.handle.StoreHandle` on a SQLite file."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._notifier: Notifier | None = None
        self._room: RoomNotifier | None = None
        if not db.readonly:
            db.absorb, db.absorb_needed = self._absorb, _intake.waiting

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def location(self) -> str:
        return str(self.db.path)

    @property
    def address(self) -> str:
        return str(self.db.path)

    @property
    def readonly(self) -> bool:
        return self.db.readonly

    def close(self) -> None:
        self.db.close()
        if self._notifier is not None:
            self._notifier.close()
        if self._room is not None:
            self._room.close()

    # -- wake-ups ------------------------------------------------------------------------

    def wakeup(self) -> None:
        notifier = self._notifier
        if notifier is None:
            notifier = self._notifier = Notifier(self.db.path)
        notifier.notify()

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None] | None:
        listener = Listener(self.db.path, on_wake)
        return listener.stop if listener.start() else None

    def offload_checkpoints(self) -> Callable[[], None] | None:
        checkpointer = Checkpointer(self.db)
        checkpointer.start()
        return checkpointer.stop

    def made_room(self) -> None:
        room = self._room
        if room is None:
            room = self._room = RoomNotifier(self.db.path)
        room.notify()

    def room_waiter(self) -> RoomWaiter | None:
        return room_waiter(self.db.path)

    def refresh(self) -> None:
        self.db.refresh()

    # -- the intake (transitions.intake) -----------------------------------------------------

    def intake_waiting(self) -> bool:
        with self.db.read() as conn:
            return _intake.waiting(conn)

    def absorb_intake(self) -> None:
        self.db.absorb_if_free()

    def set_queue_weights(self, weights: Mapping[str, int]) -> None:
        self.db.queue_weights = dict(weights)

    def _absorb(self, conn: sqlite3.Connection) -> int:
        return _intake.absorb(conn, self.db.queue_weights)

    # -- change detection ----------------------------------------------------------------

    def data_version(self) -> int:
        return _schedules.data_version(self.db)
