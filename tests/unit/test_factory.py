"""One factory opens every store: from settings, from a URL, or from a SQLite path."""

from __future__ import annotations

import pytest

from runner.errors import ConfigError, DatabaseUnavailable
from runner.settings_loader import parse_settings
from runner.store.backend import Backend, Store, StoreRequest
from runner.store.factory import MODULES, backend, open_store, register_backend


def test_settings_open_the_sqlite_file_they_name(tmp_path):
    settings = parse_settings({"runner": {"database": str(tmp_path / "jobs.db")}})
    store = open_store(settings)
    assert isinstance(store, Store)
    assert store.location == str(tmp_path / "jobs.db") and store.count_jobs() == 0


def test_a_path_and_a_sqlite_url_open_the_same_file(tmp_path):
    path = tmp_path / "jobs.db"
    open_store(path).kv_put("k", b"v")
    assert open_store(f"sqlite://{path}", readonly=True).kv_peek("k", now=0.0) == b"v"


def test_a_read_only_open_of_a_missing_file_creates_nothing(tmp_path):
    with pytest.raises(DatabaseUnavailable, match="no such database file"):
        open_store(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_a_url_of_another_backend_than_queue_type_is_refused_without_its_password():
    with pytest.raises(ConfigError, match="queue_type") as caught:
        open_store(parse_settings({"runner": {"database": "postgresql://me:secret@db/jobs"}}))
    assert "secret" not in str(caught.value)


def test_an_unknown_scheme_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown scheme 'mysql'"):
        open_store("mysql://db/jobs")


def test_an_unknown_backend_names_the_known_ones():
    with pytest.raises(ConfigError, match="no storage backend 'oracle'.*sqlite"):
        backend("oracle")


def test_a_registered_backend_is_opened_by_its_scheme(tmp_path):
    opened: list[StoreRequest] = []

    def open_fn(request: StoreRequest) -> Store:
        opened.append(request)
        return open_store(tmp_path / "under.db")

    from runner.store import factory

    # Stand in for the real backend of that scheme, then put it back for the other tests.
    saved_module, saved_backend = MODULES.get("redis"), factory._loaded.get("redis")
    register_backend(Backend("redis", open_fn), module="tests.unit.test_factory")
    try:
        open_store("redis://127.0.0.1:6379/0", readonly=True)
    finally:
        factory._loaded.pop("redis", None)
        MODULES.pop("redis", None)
        if saved_module is not None:
            MODULES["redis"] = saved_module
        if saved_backend is not None:
            factory._loaded["redis"] = saved_backend
    assert [(r.database, r.readonly) for r in opened] == [("redis://127.0.0.1:6379/0", True)]
