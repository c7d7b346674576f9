"""huey imported without the Redis and PostgreSQL drivers, which load when a backend needs them.

``huey.storage`` imports ``redis`` and ``psycopg`` as it loads, for its own Redis and
PostgreSQL storages. The runner never uses those (its backends import the drivers
themselves, once chosen), and the two imports were more than half of ``import runner``:
about 120 of 250 ms on every CLI command, worker start and script that enqueues.

So ``runner/__init__`` imports this module first, and huey loads with the two imports
refused in this thread alone (another thread importing ``redis`` meanwhile gets it).
huey's own Redis and PostgreSQL storages then import their driver when one is built,
so ``RedisHuey`` and ``PostgresHuey`` work as before, in a process that imported the
runner first too.
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

#: The top-level packages huey.storage imports for storages the runner does not use.
DRIVERS = ("redis", "psycopg")


class _Refused(importlib.abc.MetaPathFinder):
    """Refuses ``names`` (and their submodules) to one thread, as if not installed."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)
        self.thread = threading.get_ident()

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> None:
        if fullname.partition(".")[0] in self.names and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def import_huey() -> None:
    """Import ``huey`` (once per process) without the drivers not imported yet."""
    if "huey.storage" in sys.modules:
        return  # imported before the runner: as huey does it, nothing to undo
    refused = _Refused([name for name in DRIVERS if name not in sys.modules])
    sys.meta_path.insert(0, refused)
    try:
        import huey.storage as storage
    finally:
        sys.meta_path.remove(refused)
    if storage.Redis is None:
        _load_first(storage.RedisStorage, lambda: _load_redis(storage))
    if storage.psycopg is None:
        _load_first(storage.PostgresStorage, lambda: _load_psycopg(storage))


def _load_first(cls: type, load: Callable[[], None]) -> None:
    """Make ``cls`` (and its subclasses) load its driver before building a storage."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        load()
        init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]


def _load_redis(storage: ModuleType) -> None:
    """Give huey.storage the names its first import would have bound."""
    try:
        from redis import ConnectionPool, Redis
        from redis.exceptions import ConnectionError, TimeoutError
    except ImportError:
        return  # huey says what is missing, as without the runner
    storage.ConnectionPool, storage.Redis = ConnectionPool, Redis
    storage.ConnectionError, storage.TimeoutError = ConnectionError, TimeoutError
    if storage.RedisStorage.redis_client is None:  # a class attribute, bound at import
        storage.RedisStorage.redis_client = Redis


def _load_psycopg(storage: ModuleType) -> None:
    try:
        import psycopg
    except ImportError:
        return
    storage.psycopg = psycopg


import_huey()
