"""Wake idle workers the moment a job is written, from any local process.

Each worker process binds a Unix datagram socket in a directory beside the
database (``jobs.db-wake/``). A producer, after its commit, sends one byte to
every socket there. Workers therefore sleep without polling and still start a
job within a millisecond or two; if a wake-up is lost (another mount namespace,
a full socket buffer) the worker's ``poll_interval`` is the fallback.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from runner.store.sqlite.workers import pid_alive

logger = logging.getLogger(__name__)

_MAX_PATH = 100  # sun_path is 108 bytes on Linux; leave room for the file name.
_LIST_TTL = 0.5
#: Seconds a listener's receive waits before it looks at its stop flag again (a stop
#: pokes the socket, so this bounds only a stop whose poke was lost).
RECEIVE_TIMEOUT = 1.0


def wake_dir(db_path: Path, kind: str = "wake") -> Path:
    """Where the wake sockets of a database live (``kind`` "room": those of producers
    waiting for room in a full queue)."""
    preferred = Path(f"{db_path}-{kind}")
    if len(str(preferred)) + 24 <= _MAX_PATH:
        return preferred
    digest = hashlib.sha1(str(db_path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"jobrunner-{kind}-{digest}"


class Notifier:
    """Producer side: pokes every listening worker after a commit."""

    def __init__(self, db_path: Path, kind: str = "wake") -> None:
        self.dir = wake_dir(db_path, kind)
        self._sock: socket.socket | None = None
        self._targets: list[str] = []
        self._listed_at = 0.0
        self._lock = threading.Lock()

    def notify(self) -> bool:
        """Send a wake-up to every worker of this database; never raises. False when
        there was nobody to wake."""
        now = time.monotonic()
        if not self._targets and now - self._listed_at <= _LIST_TTL:
            return False  # nobody listened at the last look (a script with no worker running)
        try:
            with self._lock:
                if now - self._listed_at > _LIST_TTL:
                    self._targets = self._list()
                    self._listed_at = now
                if not self._targets:
                    return False
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)
                for target in list(self._targets):
                    try:
                        self._sock.sendto(b"!", target)
                    except (ConnectionRefusedError, FileNotFoundError):
                        self._targets.remove(target)
                        _unlink_stale(target)
                    except OSError:
                        pass  # buffer full: that worker is awake anyway
        except Exception:  # a wake-up is an optimisation; never fail a commit for it
            logger.debug("wake-up failed", exc_info=True)
        return True

    def forget_targets(self) -> None:
        """List the sockets again at the next notify (one was added or removed)."""
        self._listed_at = 0.0

    def close(self) -> None:
        """Close the sending socket (opened again on the next notify)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _list(self) -> list[str]:
        try:
            return [entry.path for entry in os.scandir(self.dir) if entry.name.endswith(".sock")]
        except OSError:
            return []


def _unlink_stale(path: str) -> None:
    pid = Path(path).name.split("-", 1)[0]
    if pid.isdigit() and not pid_alive(int(pid)):
        try:
            os.unlink(path)
        except OSError:
            pass


class Listener:
    """Worker side: a thread that calls ``on_wake`` whenever a producer pokes."""

    def __init__(self, db_path: Path, on_wake: Callable[[], None]) -> None:
        self.dir = wake_dir(db_path)
        self.on_wake = on_wake
        self.path: str | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> bool:
        """Bind the socket and start listening; False when wake-ups are unavailable."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            path = str(self.dir / f"{os.getpid()}-{os.urandom(4).hex()}.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            sock.settimeout(RECEIVE_TIMEOUT)
        except OSError as exc:
            logger.warning("wake-ups unavailable (%s); polling every poll_interval", exc)
            return False
        self._sock, self.path = sock, path
        self._thread = threading.Thread(target=self._run, name="runner-wakeup", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop listening and remove the socket file.

        The thread waits in ``recv``: a byte sent to its own socket ends the wait now,
        so a worker stopping while idle does not sit out the receive timeout.
        """
        self._stopping.set()
        if self.path:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as poke:
                    poke.setblocking(False)
                    poke.sendto(b"!", self.path)
            except OSError:
                pass  # the timeout ends the wait instead
            try:
                os.unlink(self.path)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(2.0)
        if self._sock is not None:
            self._sock.close()

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                self._sock.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return
            if self._stopping.is_set():
                return
            # Coalesce a burst of wake-ups into one.
            self._sock.setblocking(False)
            try:
                while True:
                    self._sock.recv(64)
            except OSError:
                pass
            finally:
                self._sock.settimeout(RECEIVE_TIMEOUT)
            self.on_wake()
