"""Opening a store: the one place a backend is chosen, from settings or from a URL.

``[worker] queue_type`` names the backend and ``[runner] database`` where its
data lives: a SQLite file path, or a URL (``postgresql://...``, ``redis://...``).
A bare URL (``--db``) picks its backend by scheme. Each backend is a module
exposing ``BACKEND`` (a :class:`Backend`), imported the first time it is asked
for, so a driver one does not use is never imported. See
:mod:`runner.store.backend` for how a new backend plugs in.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from runner.config import DatabaseSection, Settings
from runner.errors import ConfigError
from runner.files import DEFAULT_FILE_MODE, is_empty_database
from runner.store.backend import Backend, Store, StoreRequest

if TYPE_CHECKING:
    from runner.store.sqlite.db import Database


#: Where each backend lives; imported on first use.
MODULES: dict[str, str] = {"sqlite": "runner.store.sqlite", "postgres": "runner.store.postgres",
                           "redis": "runner.store.redis"}
#: URL schemes and the backend each names (``unix://PATH`` is redis-py's Redis on a socket,
#: as ``[runner] redis_url`` allows; PostgreSQL names its socket in a postgresql:// URL).
SCHEMES: dict[str, str] = {"sqlite": "sqlite", "postgres": "postgres", "postgresql": "postgres",
                           "redis": "redis", "rediss": "redis", "unix": "redis"}

_loaded: dict[str, Backend] = {}
_lock = threading.Lock()


def register_backend(backend: Backend, module: str | None = None) -> None:
    """Make ``backend`` available by its name (``module`` records where it lives)."""
    with _lock:
        _loaded[backend.name] = backend
        if module is not None:
            MODULES[backend.name] = module


def backend(name: str) -> Backend:
    """The backend called ``name``, its module imported on first use.

    Raises:
        ConfigError: no backend has that name, or its driver is not installed.
    """
    found = _loaded.get(name)
    if found is not None:
        return found
    module = MODULES.get(name)
    if module is None:
        raise ConfigError(f"[worker] queue_type: no storage backend {name!r} (known: "
                          f"{', '.join(sorted(MODULES))})")
    try:
        loaded = importlib.import_module(module).BACKEND
    except ImportError as exc:
        raise ConfigError(f"[worker] queue_type {name!r}: cannot load {module} ({exc}); "
                          "is its driver installed?") from exc
    register_backend(loaded)
    return loaded


def is_url(database: str) -> bool:
    """True when ``[runner] database`` (or ``--db``) is a URL rather than a file path."""
    return "://" in database


def database_of(settings: Settings) -> str:
    """Where the store of ``settings`` lives, as :attr:`Store.address` says it: a file path,
    or a URL (Redis with its ``prefix``)."""
    if is_url(settings.runner.database):
        return settings.runner.database
    if settings.worker.queue_type == "redis":
        return redis_url(settings)
    return str(settings.database_path)


#: Seconds a command's look for the jobs database waits for a server that does not
#: answer; a writer's wait rides out a restart (10 s and more), which a person typing a
#: command should not sit through to learn that the server is down.
PROBE_WAIT = 3.0


def holds_jobs(settings: Settings) -> bool:
    """Whether the store of ``settings`` holds a jobs database, found without making one: a
    SQLite file that exists, a PostgreSQL database with the jobs tables (opening it
    read-write would create them), a Redis prefix a worker or producer has opened to
    write (Redis makes its keys on the first write, so a mistyped prefix reads as an
    empty jobs database otherwise).

    Raises:
        DatabaseUnavailable: the server did not answer within :data:`PROBE_WAIT`.
    """
    name = settings.worker.queue_type
    if name == "sqlite" and not is_url(settings.runner.database):
        path = settings.database_path
        return path.exists() and not is_empty_database(path)
    if name not in ("postgres", "redis"):
        return True
    probe = open_store(settings, readonly=True, reach_within=PROBE_WAIT)
    try:
        return probe.has_table("runner_job")
    finally:
        probe.close()  # its pool keeps a connection (and threads) open until closed


def missing_cause(settings: Settings) -> str | None:
    """Why the store of ``settings`` may hold no jobs database when :func:`holds_jobs`
    says so, where the place alone does not tell (a Redis prefix, an empty file); else None."""
    if settings.worker.queue_type == "sqlite" and not is_url(settings.runner.database):
        return "the file is empty" if is_empty_database(settings.database_path) else None
    if settings.worker.queue_type != "redis":
        return None
    from runner.store.redis.connection import DEFAULT_PREFIX
    from runner.store.redis.url import nothing_under, split_prefix

    return nothing_under(split_prefix(database_of(settings), DEFAULT_PREFIX)[1])


def pointed_at(settings: Settings, address: str) -> Settings:
    """``settings`` with the store at ``address`` (a :attr:`Store.address`) instead: a URL
    names its backend by scheme, a path is a SQLite file."""
    if _same_place(database_of(settings), address):
        return settings
    name = SCHEMES.get(address.split("://", 1)[0], "sqlite") if is_url(address) else "sqlite"
    chosen = settings.with_database(address)
    return replace(chosen, worker=replace(chosen.worker, queue_type=name))


def _same_place(database: str, address: str) -> bool:
    if is_url(database) or is_url(address):
        return database == address
    return Path(database).resolve() == Path(address).resolve()


def open_store(target: Settings | str | os.PathLike[str], *, readonly: bool = False,
               shared: bool = False, options: DatabaseSection | None = None,
               file_mode: int | None = None, reach_within: float | None = None,
               lock_wait: float | None = None) -> Store:
    """The store of ``target``: settings (backend by ``[worker] queue_type``), a URL
    (backend by scheme) or a SQLite file path.

    Raises:
        ConfigError: the backend is unknown or does not match the database named.
        DatabaseUnavailable: the data cannot be reached (a read-only open of a
            missing file, an unwritable directory).
        DatabaseCorrupt: the data is not a jobs database.
    """
    if isinstance(target, Settings):
        name = target.worker.queue_type
        database = database_of(target)
        options = options or target.database
        mode = target.runner.file_mode_bits if file_mode is None else file_mode
        # The worker's threads, plus its claimer, heartbeat, scheduler and log sink.
        connections = target.worker.max_concurrent_tasks + 4
        if is_url(database) and SCHEMES.get(database.split("://", 1)[0]) != name:
            raise ConfigError(f"[runner] database {_redacted(database)!r} is not a "
                              f"{name} database ([worker] queue_type = {name!r})")
    else:
        database = os.fspath(target)
        if is_url(database):
            scheme = database.split("://", 1)[0]
            if scheme not in SCHEMES:
                raise ConfigError(f"{_redacted(database)}: unknown scheme {scheme!r} (known: "
                                  f"{', '.join(sorted(SCHEMES))})")
            name = SCHEMES[scheme]
            if name == "sqlite":
                database = database.split("://", 1)[1]
        else:
            name = "sqlite"
            database = str(Path(database).expanduser().absolute())
        mode = DEFAULT_FILE_MODE if file_mode is None else file_mode
        connections = 0
    request = StoreRequest(database, options or DatabaseSection(), readonly=readonly,
                           shared=shared, file_mode=mode, connections=connections,
                           reach_within=reach_within, lock_wait=lock_wait)
    return backend(name).open(request)


def redacted(url: str) -> str:
    """``url`` without a password, for messages."""
    return _redacted(url)


def redis_url(settings: Settings) -> str:
    """``[runner] redis_url`` with ``redis_prefix`` as its ``prefix`` parameter."""
    url, prefix = settings.runner.redis_url, settings.runner.redis_prefix
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


def driver_errors() -> tuple[type[BaseException], ...]:
    """Driver exceptions of the loaded backends that mean the data has a problem."""
    backend("sqlite")
    return tuple(e for b in list(_loaded.values()) for e in b.errors)


def is_driver_bug(exc: BaseException) -> bool:
    """True when ``exc`` is a driver's report of a wrong statement (a bug in the code)."""
    return any(isinstance(exc, b.bugs) for b in list(_loaded.values()) if b.bugs)


def store_for(db: Database) -> Store:
    """The :class:`Store` of an open SQLite :class:`~runner.store.sqlite.db.Database`
    (tests and tools)."""
    from runner.store.sqlite import sqlite_store

    return sqlite_store(db)


def _redacted(url: str) -> str:
    """``url`` without a password, for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
