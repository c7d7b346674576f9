"""The backends under test: every test of this folder runs once per backend.

A new backend adds one entry to ``BACKENDS``: a function that opens a fresh,
empty store in a directory, and can open a second handle on the same data (as a
second process would) for the tests of concurrent schedulers and workers.
The tests of ``test_runner.py`` also run the runner itself (the ``huey``
fixture) on the same data: a new backend points the runner's settings at it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.config import DatabaseSection
from runner.store.backend import Store
from runner.store.db import Database
from runner.store.schema import prepare_database
from runner.store.sqlite import SqliteStore
from tests.redis_support import REDIS_URL, redis_or_skip

#: (store, a function opening another handle on the same data)
Opened = tuple[Store, Callable[[], Store]]


def _sqlite(directory: Path) -> Opened:
    path = directory / "jobs.db"
    options = DatabaseSection(synchronous="NORMAL", busy_timeout=10)

    def open_handle() -> Store:
        # A Database of its own: its own connections, as another process would have.
        db = Database(path, options)
        prepare_database(db)
        return SqliteStore(db)

    return open_handle(), open_handle


def _redis(directory: Path) -> Opened:
    from runner.store.redis import RedisStore

    redis_or_skip()
    prefix = f"test-{uuid.uuid4().hex}"
    handles: list[RedisStore] = []

    def open_handle() -> Store:
        # A client of its own, as another process would have; the same keys.
        handle = RedisStore(REDIS_URL, prefix=prefix, directory=directory / "redis")
        handles.append(handle)
        return handle

    store = open_handle()
    _cleanups.append(lambda: (store.delete_all(), [h.close() for h in handles]))
    return store, open_handle


_cleanups: list[Callable[[], object]] = []

BACKENDS: dict[str, Callable[[Path], Opened]] = {"sqlite": _sqlite, "redis": _redis}


@pytest.fixture(params=sorted(BACKENDS))
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    yield BACKENDS[request.param](tmp_path)
    while _cleanups:
        _cleanups.pop()()


#: [runner] and [worker] lines that point the runner at a backend's data, by backend.
RUNNER_SETTINGS: dict[str, Callable[[Store], str]] = {
    "redis": lambda store: (f'redis_url = "{REDIS_URL}"\nredis_prefix = "{store.prefix}"',
                            'queue_type = "redis"'),  # type: ignore[attr-defined]
}


@pytest.fixture
def huey(request: pytest.FixtureRequest, opened: Opened, tmp_path: Path):  # noqa: ANN201
    """The runner on the backend under test's data (``tests/conftest.py``'s, pointed there)."""
    import tests.jobs  # noqa: F401 - registers the test tasks
    from runner.config import load_settings
    from runner.registry import configure, get_huey
    from tests.conftest import write_settings

    backend = request.node.callspec.params["opened"]
    runner_lines, worker_lines = "", ""
    if backend in RUNNER_SETTINGS:
        runner_lines, worker_lines = RUNNER_SETTINGS[backend](opened[0])
    path = write_settings(tmp_path, worker={})
    text = path.read_text().replace("[runner]\n", f"[runner]\n{runner_lines}\n", 1)
    path.write_text(text.replace("[worker]\n", f"[worker]\n{worker_lines}\n", 1))
    configure(load_settings(path, environ={}))
    instance = get_huey()
    yield instance
    jobs = instance.jobs
    if jobs is not None:
        jobs.notifier.close()
        jobs.db.close()


@pytest.fixture
def store(opened: Opened) -> Store:
    """A fresh, empty store of the backend under test."""
    return opened[0]


@pytest.fixture
def another(opened: Opened) -> Callable[[], Store]:
    """Opens another handle on the same data (a second worker or scheduler)."""
    return opened[1]
