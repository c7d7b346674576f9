"""Redis for tests: a unique key prefix on the shared server, or a server of the test's own.

The shared server (``TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/0``) is never
restarted nor flushed: each test writes under its own prefix and deletes it. A
test that restarts Redis starts its own ``redis-server`` on a free port, with AOF.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import write_settings

if TYPE_CHECKING:
    from runner.store.redis import RedisStore

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_or_skip(url: str = REDIS_URL) -> None:
    """Skip when no Redis answers at ``url``; with ``CI=true`` fail instead."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"no Redis at {url}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: a missing server fails the run)")
        pytest.skip(message)


def failure_group_members(store: RedisStore, error_type: str | None,
                          message: str | None) -> list[str]:
    """The ids in one failure group's sorted set, as the Lua scripts and migrate-to keep it."""
    key = store.k("fgroup", store._failure_group(error_type, message))
    return [member.decode() for member in store.r.zrange(key, 0, -1)]


def new_prefix() -> str:
    return f"test-{uuid.uuid4().hex}"


@contextmanager
def fresh_store() -> Iterator[RedisStore]:
    """A store on the shared server under a prefix of its own, deleted afterwards."""
    from runner.store.redis import RedisStore

    redis_or_skip()
    opened = RedisStore(REDIS_URL, prefix=new_prefix())
    try:
        yield opened
    finally:
        opened.delete_all()
        opened.close()


@contextmanager
def own_store(directory: Path) -> Iterator[RedisStore]:
    """A store on a ``redis-server`` of the test's own (:class:`OwnRedis`), so the
    server's command counts (:func:`commands_run`) are this store's alone: the shared
    server counts the commands of every test running beside it."""
    from runner.store.redis import RedisStore

    server = OwnRedis(directory)
    server.start()
    opened = RedisStore(server.url, prefix=new_prefix())
    try:
        yield opened
    finally:
        opened.close()
        server.stop()


def commands_run(store: RedisStore) -> int:
    """Commands the server ran so far, those inside scripts included (INFO left out)."""
    stats = store.r.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


def redis_settings(directory: Path, prefix: str, *, url: str = REDIS_URL,
                   worker: dict[str, object] | None = None,
                   name: str = "redis.toml") -> Path:
    """``write_settings`` pointed at Redis under ``prefix``."""
    path = write_settings(directory, worker={"queue_type": "redis", **(worker or {})},
                          name=name)
    text = path.read_text().replace(
        "[runner]\n", f'[runner]\nredis_url = "{url}"\nredis_prefix = "{prefix}"\n', 1)
    path.write_text(text)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A ``redis-server`` of the test's own, persisting with AOF (``appendfsync everysec``).

    With ``unix_socket`` it listens there only (no TCP port), at ``unix://PATH``.
    """

    def __init__(self, directory: Path, *, unix_socket: Path | None = None) -> None:
        self.directory = directory
        self.unix_socket = unix_socket
        self.port = 0 if unix_socket else free_port()
        self.url = (f"unix://{unix_socket}" if unix_socket
                    else f"redis://127.0.0.1:{self.port}/0")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail("redis-server is not installed (CI=true)")
            pytest.skip("redis-server is not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        listen = ["--unixsocket", str(self.unix_socket)] if self.unix_socket else []
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", *listen, "--dir",
             str(self.directory), "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", "", "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise AssertionError("own redis-server did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: what a crash or a power cut does (the last second of writes may be lost)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class ReplyCutter:
    """A TCP relay to a Redis server that can lose one reply, as a dropped connection does.

    Armed with a marker (bytes of a request, such as a function's name), it passes
    the next request holding the marker on to Redis, which runs it, then closes
    that connection instead of passing the reply back: the client sees the
    connection lost after the command ran, and reconnects through the relay.
    An action given with the marker runs in between, as the writes of other
    clients do while the client waits to send the command again.
    """

    def __init__(self, target: str = REDIS_URL) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.path = parts.path
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}{self.path}"
        self._marker: bytes | None = None
        self._then: Callable[[], object] | None = None
        self._lock = threading.Lock()
        #: Replies lost so far.
        self.cut = 0
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def lose_reply_to(self, marker: bytes, then: Callable[[], object] | None = None) -> None:
        """Lose the reply to the next request that holds ``marker`` (once).

        ``then`` runs after that request ran and before its connection is closed,
        so before the client sends it again.
        """
        with self._lock:
            self._marker = marker
            self._then = then

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._open += [client, server]
            doomed = threading.Event()
            threading.Thread(target=self._requests, args=(client, server, doomed),
                             daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client, doomed),
                             daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket,
                  doomed: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                with self._lock:
                    if self._marker is not None and self._marker in data:
                        self._marker = None
                        doomed.set()  # before Redis can answer
                server.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client, server)

    def _replies(self, server: socket.socket, client: socket.socket,
                 doomed: threading.Event) -> None:
        try:
            while data := server.recv(65536):
                if doomed.is_set():
                    self.cut += 1
                    with self._lock:
                        then, self._then = self._then, None
                    if then is not None:
                        then()
                    break  # the command ran; its reply goes nowhere
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client, server)

    def close(self) -> None:
        self.sock.close()
        for conn in self._open:
            conn.close()


def _shut(*ends: socket.socket) -> None:
    for end in ends:
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
