"""The backends under test: every test of this folder runs once per backend.

A new backend adds one entry to ``BACKENDS``: a function that opens a fresh,
empty store in a directory, and can open a second handle on the same data (as a
second process would) for the tests of concurrent schedulers and workers.
The tests of ``test_runner.py`` also run the runner itself (the ``huey``
fixture) on the same data: a new backend points the runner's settings at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.config import DatabaseSection
from runner.store.backend import Store
from runner.store.sqlite import SqliteStore
from runner.store.sqlite.db import Database
from runner.store.sqlite.schema import prepare_database

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


BACKENDS: dict[str, Callable[[Path], Opened]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    yield BACKENDS[request.param](tmp_path)


@pytest.fixture
def store(opened: Opened) -> Store:
    """A fresh, empty store of the backend under test."""
    return opened[0]


@pytest.fixture
def another(opened: Opened) -> Callable[[], Store]:
    """Opens another handle on the same data (a second worker or scheduler)."""
    return opened[1]
