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
import time
import uuid
from collections.abc import Iterator
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
    """A ``redis-server`` of the test's own, persisting with AOF (``appendfsync everysec``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail("redis-server is not installed (CI=true)")
            pytest.skip("redis-server is not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
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
