"""SQLite: producers blocked at a full queue wait for room on a Unix socket.

A producer whose queue is full (``on_full = "block"``) binds a datagram
socket in ``jobs.db-room/`` and sleeps on it; a worker that claimed jobs sends
one byte to every socket there (:class:`~runner.store.sqlite.wakeup.Notifier`).
While no producer waits the directory is empty or absent, and a worker looks at
it at most every :data:`QUIET` seconds, so claims in a row pay nothing. A
datagram sent between two looks at the queue waits in the socket's buffer, so
no wake-up is lost; a lost one costs the producer's slow poll.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from runner.store.sqlite.wakeup import Notifier, wake_dir

_KIND = "room"
#: Seconds a worker stays quiet after finding no producer waiting.
QUIET = 0.1


class SocketWaiter:
    """One blocked producer's socket (a :class:`runner.store.handle.RoomWaiter`)."""

    def __init__(self, db_path: Path) -> None:
        directory = wake_dir(db_path, _KIND)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = str(directory / f"{os.getpid()}-{os.urandom(4).hex()}.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(self.path)
        except OSError:
            self._sock.close()
            raise

    def wait(self, timeout: float) -> bool:
        self._sock.settimeout(max(timeout, 0.001))
        try:
            self._sock.recv(64)
        except (TimeoutError, BlockingIOError):
            return False
        self._sock.setblocking(False)
        try:  # a burst of wake-ups is one
            while True:
                self._sock.recv(64)
        except OSError:
            pass
        return True

    def close(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self._sock.close()


class RoomNotifier:
    """Worker side: pokes every waiting producer after a claim."""

    def __init__(self, db_path: Path) -> None:
        self._notifier = Notifier(db_path, _KIND)
        self._dir = str(self._notifier.dir)
        self._seen: int | None = None
        self._quiet_until = 0.0

    def notify(self) -> None:
        """Wake the waiting producers; never raises."""
        now = time.monotonic()
        if now < self._quiet_until:
            return  # nobody waited a moment ago: claims in a row pay nothing
        try:
            changed = os.stat(self._dir).st_mtime_ns
        except OSError:
            changed = None  # no producer ever waited here
        if changed is not None and changed != self._seen:  # a waiter came or went
            self._seen = changed
            self._notifier.forget_targets()
        if changed is None or not self._notifier.notify():
            self._quiet_until = now + QUIET

    def close(self) -> None:
        self._notifier.close()


def room_waiter(db_path: Path) -> SocketWaiter | None:
    """A blocked producer's socket, or None when sockets cannot be bound here."""
    try:
        return SocketWaiter(db_path)
    except OSError:
        return None
