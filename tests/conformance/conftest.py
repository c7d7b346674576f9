"""The backends under test: every test of this folder runs once per backend.

A new backend adds one entry to ``BACKENDS``: a context manager that opens a
fresh, empty store (in a directory, a schema or a key prefix of its own) and can open a
second handle on the same data (as a second process would) for the tests of
concurrent schedulers and workers; it removes the data when the test ends.
The tests of ``test_runner.py`` also run the runner itself (the ``huey``
fixture) on the same data: a new backend points the runner's settings at it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from runner.config import DatabaseSection
from runner.store.backend import Store
from runner.store.postgres import PgDatabase, PostgresStore
from runner.store.postgres.schema import prepare
from runner.store.redis import RedisStore
from runner.store.sqlite import SqliteStore
from runner.store.sqlite.db import Database
from runner.store.sqlite.schema import prepare_database
from tests.conftest import write_settings
from tests.postgres_support import reused_schema
from tests.redis_support import REDIS_URL, redis_or_skip, redis_settings

#: (store, a function opening another handle on the same data)
Opened = tuple[Store, Callable[[], Store]]


@contextmanager
def _sqlite(directory: Path) -> Iterator[Opened]:
    path = directory / "jobs.db"
    options = DatabaseSection(synchronous="NORMAL", busy_timeout=10)

    def open_handle() -> Store:
        # A Database of its own: its own connections, as another process would have.
        db = Database(path, options)
        prepare_database(db)
        return SqliteStore(db)

    yield open_handle(), open_handle


def _prepare_schema(url: str) -> None:
    db = PgDatabase(url, pool_size=1)
    try:
        prepare(db)
    finally:
        db.close()


@contextmanager
def _postgres(directory: Path) -> Iterator[Opened]:
    """A schema of the test's own: this process's prepared schema, emptied for it."""
    with reused_schema(_prepare_schema) as url:
        handles: list[PgDatabase] = []

        def open_handle() -> Store:
            # A pool of its own: its own connections, as another host would have.
            db = PgDatabase(url, pool_size=4)
            handles.append(db)
            prepare(db)
            return PostgresStore(db)

        try:
            yield open_handle(), open_handle
        finally:
            for db in handles:
                db.close()


@contextmanager
def _redis(directory: Path) -> Iterator[Opened]:
    """A key prefix of its own on the test server, its keys deleted afterwards."""
    redis_or_skip()
    prefix = f"test-{uuid.uuid4().hex}"
    handles: list[RedisStore] = []

    def open_handle() -> Store:
        # A client of its own, as another process would have; the same keys.
        handle = RedisStore(REDIS_URL, prefix=prefix, directory=directory / "redis")
        handles.append(handle)
        return handle

    try:
        yield open_handle(), open_handle
    finally:
        handles[0].delete_all()
        for handle in handles:
            handle.close()


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Opened]]] = {
    "sqlite": _sqlite, "postgres": _postgres, "redis": _redis}


#: Contract tests a backend does not meet yet, by backend: why.
NOT_YET: dict[str, dict[str, str]] = {
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        backend = getattr(item, "callspec", None) and item.callspec.params.get("opened")
        known = NOT_YET.get(backend or "", {})
        reason = (known.get(item.path.name)
                  or known.get(f"{item.path.name}::{getattr(item, 'originalname', '')}"))
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))


@pytest.fixture(params=sorted(BACKENDS))
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    with BACKENDS[request.param](tmp_path) as handles:
        yield handles


@pytest.fixture
def store(opened: Opened) -> Store:
    """A fresh, empty store of the backend under test."""
    return opened[0]


@pytest.fixture
def another(opened: Opened) -> Callable[[], Store]:
    """Opens another handle on the same data (a second worker or scheduler)."""
    return opened[1]


@pytest.fixture
def settings_file(request: pytest.FixtureRequest, tmp_path: Path, opened: Opened) -> Path:
    """The runner's settings (the ``huey`` fixture), pointed at the backend's data."""
    backend = request.node.callspec.params["opened"]
    if backend == "sqlite":
        return write_settings(tmp_path)  # the runner's jobs.db is the store's file
    if backend == "postgres":
        path = write_settings(tmp_path, worker={"queue_type": backend})
        url = opened[0].db.url  # type: ignore[attr-defined]
        path.write_text(path.read_text().replace('database = "jobs.db"', f'database = "{url}"'))
        return path
    store = opened[0]
    assert isinstance(store, RedisStore)
    return redis_settings(tmp_path, store.prefix, name="settings.toml")
