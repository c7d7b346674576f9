"""huey and peewee imported without the Redis and PostgreSQL drivers, loaded when needed.

``huey.storage`` imports ``redis`` and ``psycopg`` as it loads, for its own Redis and
PostgreSQL storages, and peewee imports ``psycopg`` for its PostgreSQL database. The
runner never uses huey's two storages, and its backends import the drivers themselves
once chosen; yet those imports were most of the start of every CLI command, worker and
script that enqueues (about 170 ms of the 300 ms ``python -m runner --help`` took).

So ``runner/__init__`` imports this module first, and both libraries load with the two
imports refused in this thread alone (another thread importing ``redis`` meanwhile gets
it). huey's Redis and PostgreSQL storages and peewee's PostgreSQL database then import
their driver when one is built, so ``RedisHuey``, ``PostgresHuey`` and the PostgreSQL
backend work as before.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

#: The top-level packages huey and peewee import for what the runner's SQLite does not use.
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


def import_libraries() -> None:
    """Import huey and peewee (once per process) without the drivers not imported yet.

    A library imported before the runner keeps what it loaded: nothing to undo there.
    """
    if "huey.storage" not in sys.modules:
        with _refused():
            import huey.storage as storage
        if storage.Redis is None:
            _load_first(storage.RedisStorage, lambda: _load_redis(storage))
        if storage.psycopg is None:
            _load_first(storage.PostgresStorage, lambda: _load_psycopg(storage))
    if "peewee" not in sys.modules:
        with _refused():
            import peewee
        if peewee.psycopg is None:
            _load_first(peewee.PostgresqlDatabase, lambda: _load_peewee_psycopg(peewee))


@contextmanager
def _refused() -> Iterator[None]:
    refused = _Refused([name for name in DRIVERS if name not in sys.modules])
    sys.meta_path.insert(0, refused)
    try:
        yield
    finally:
        sys.meta_path.remove(refused)


def preload_shadowed_drivers(directory: str | None = None) -> None:
    """Import now each driver that a module or package of ``directory`` is named like.

    For a process that has put ``directory`` first on ``sys.path`` (``python -m runner``
    and ``python -m tui`` run in a project: Python does it), or is about to (a worker
    started in a project): the backends import their driver later, and a project's
    ``redis.py`` would then be found in its place. The driver is imported with
    ``directory`` left off the path. A driver not installed is left to its backend to
    report. ``directory`` defaults to the working directory (none when it was deleted).
    """
    if directory is None:
        try:
            directory = os.getcwd()
        except OSError:  # a deleted working directory: nothing in it to stand in
            return
    names = [name for name in DRIVERS if name not in sys.modules and (
        os.path.exists(os.path.join(directory, name + ".py"))
        or os.path.isdir(os.path.join(directory, name)))]
    if not names:
        return
    here = os.path.realpath(directory)
    saved = sys.path[:]
    sys.path[:] = [p for p in saved if os.path.realpath(p or os.curdir) != here]
    try:
        for name in names:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
    finally:
        sys.path[:] = saved


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


def _load_peewee_psycopg(peewee: ModuleType) -> None:
    """peewee's names for psycopg 3, as its import binds them (it picks its adapter by them)."""
    try:
        import psycopg
        from psycopg.pq import TransactionStatus
        from psycopg.types.json import Json, Jsonb
    except ImportError:
        return
    peewee.psycopg, peewee.TransactionStatus = psycopg, TransactionStatus
    peewee.Json_pg3, peewee.Jsonb_pg3 = Json, Jsonb


import_libraries()
