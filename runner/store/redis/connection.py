"""One Redis connection pool and the registered scripts, shared by the store's parts."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

import redis
from redis.backoff import ExponentialBackoff
from redis.commands.core import Script
from redis.exceptions import ResponseError
from redis.retry import Retry

from runner.store.redis.codec import Arg, refusal
from runner.store.redis.lua_jobs import PRELUDE as JOBS
from runner.store.redis.lua_limits import CHOOSER
from runner.store.redis.scripts import BODIES
from runner.store.redis.url import check_url, connect_checking_database

#: Helpers every script starts with.
PRELUDE = JOBS + CHOOSER

#: Reconnection attempts of one command before its error reaches the caller.
RETRIES = 10

#: The prefix when the settings name none.
DEFAULT_PREFIX = "jobrunner"


def local_dir(url: str, prefix: str) -> Path:
    """A directory of this host for one Redis data set: running files and wake-up files.

    Named by a hash of the URL and prefix, so every process of the host using the
    same data finds the same one.
    """
    digest = hashlib.sha1(f"{url}\n{prefix}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"jobrunner-redis-{digest}"


def library(prefix_name: str) -> tuple[str, dict[str, str]]:
    """The scripts as one Redis function library: its code and the function of each script.

    A library is loaded once per server, so the helpers are defined once rather
    than at every call (an EVALSHA script runs its whole prelude each time). The
    names carry a hash of the code, so workers of two versions can share a server.
    """
    digest = hashlib.sha1((PRELUDE + "".join(BODIES.values())).encode()).hexdigest()[:10]
    names = {name: f"{prefix_name}_{digest}_{name}" for name in BODIES}
    parts = [f"#!lua name={prefix_name}_{digest}",
             "local ARGV", PRELUDE.replace("local P = ARGV and ARGV[1]", "local P")]
    for name, body in BODIES.items():
        parts.append(f"redis.register_function('{names[name]}', function(_, args)\n"
                     f"ARGV = args\nP = args[1]\nwoke = false\n{body}\nend)")
    return "\n".join(parts), names


_LIBRARY, _FUNCTIONS = library("jobrunner")


class RedisBase:
    """The client, the key prefix and the scripts (see :mod:`runner.store.redis.scripts`)."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX,
                 client: redis.Redis | None = None, directory: Path | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.p = prefix + ":"
        if client is None:
            check_url(url)
        self.r: redis.Redis = client or redis.Redis.from_url(
            url, decode_responses=False, socket_timeout=30, health_check_interval=10,
            redis_connect_func=connect_checking_database(url),
            # A restart of Redis is ridden out: about 6 s of reconnects, growing apart.
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), RETRIES),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError])
        self._dir = directory or local_dir(url, prefix)
        self._scripts: dict[str, Script] = {
            name: self.r.register_script(PRELUDE + body) for name, body in BODIES.items()}
        #: Redis 7 functions when the server has them (else the scripts, by EVALSHA).
        self._functions: bool | None = None
        #: Per thread: the last enqueue published the wake-up itself (see ``wakeup``).
        self._published = threading.local()
        #: Per thread: a connection of its own for :meth:`send_raw` (and the pid it is of).
        self._own = threading.local()

    @property
    def path(self) -> Path:
        return self._dir

    def k(self, *parts: str) -> str:
        """A key under the prefix."""
        return self.p + ":".join(parts)

    def _load_functions(self) -> bool:
        try:
            self.r.function_load(_LIBRARY, replace=True)
            return True
        except ResponseError as exc:  # before Redis 7: no functions, scripts it is
            if "unknown command" not in str(exc).lower():
                raise
            return False

    def _call(self, name: str, args: list[Arg]) -> object:
        if self._functions is None:
            self._functions = self._load_functions()
        if not self._functions:
            return self._scripts[name](keys=[], args=args)
        try:
            return self.r.fcall(_FUNCTIONS[name], 0, *args)
        except ResponseError as exc:
            if "function not found" not in str(exc).lower():
                raise
            # A restarted Redis without persistence forgot the library: load it again.
            self._load_functions()
            return self.r.fcall(_FUNCTIONS[name], 0, *args)

    def run(self, name: str, *args: Arg, where: str = "") -> object:
        """Run one script; a refusal raises the runner's error for it."""
        try:
            return self._call(name, [self.p, *args])
        except ResponseError as exc:
            mapped = refusal(exc, where or f"{self.url} ({self.prefix})")
            if mapped is exc:
                raise
            raise mapped from None

    def send_raw(self, packed: bytes, replies: int) -> list[object]:
        """Send commands already in the protocol; their ``replies`` replies (errors as values).

        On this thread's own connection, held from the pool: the quick enqueue's one
        round trip, without the client's per-command bookkeeping (pool, retries, events),
        which costs about as much as the round trip. Any failure closes the connection
        and raises; the caller falls back to :meth:`run`, which reconnects and retries.
        """
        own = self._own
        conn = getattr(own, "conn", None)
        if conn is None or own.pid != os.getpid():
            own.conn = conn = self.r.connection_pool.get_connection()
            own.pid = os.getpid()
        try:
            conn.send_packed_command([packed], check_health=False)
            return [conn.read_response(disable_decoding=True) for _ in range(replies)]
        except BaseException:
            own.conn = None
            conn.disconnect()
            self.r.connection_pool.release(conn)
            raise

    def _settle(self) -> None:
        """Write out the inbox (jobs of the quick enqueue) before reading jobs or indexes.

        Each is one entry there until then (see ``absorb`` in :mod:`.lua_jobs`);
        writing them out changes no job's state, so a read-only handle does it too.
        One LLEN when the inbox is empty.
        """
        if self.r.llen(self.k("inbox")):
            self.run("absorb")

    def close(self) -> None:
        self.r.close()

    def delete_all(self) -> int:
        """Delete every key under the prefix (tests, and a user starting afresh)."""
        deleted = 0
        batch: list[bytes] = []
        for key in self.r.scan_iter(match=self.p.replace("*", r"\*") + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += self.r.delete(*batch)
                batch = []
        if batch:
            deleted += self.r.delete(*batch)
        return deleted
