"""Wake-ups on PostgreSQL (runner.store.postgres.wakeup): LISTEN/NOTIFY."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.store.postgres import PgDatabase, wakeup
from runner.store.postgres.schema import prepare
from tests.conftest import wait_for
from tests.postgres_support import fresh_schema


@pytest.fixture
def db() -> Iterator[PgDatabase]:
    with fresh_schema() as address:
        opened = PgDatabase(address, pool_size=2)
        prepare(opened)
        try:
            yield opened
        finally:
            opened.close()


def test_an_idle_listener_stops_without_waiting_out_its_receive(db, monkeypatch):
    # A worker stopped while idle used to sit in notifies() until its timeout.
    monkeypatch.setattr(wakeup, "RECEIVE_TIMEOUT", 60.0)
    wakes: list[int] = []
    listener = wakeup.Listener(db, lambda: wakes.append(1))
    listener.start()
    wait_for(lambda: db.listening, timeout=10.0, message="the LISTEN")
    listener.stop()
    assert listener._thread is not None and not listener._thread.is_alive()
    assert wakes == []  # its stop notification was not a wake-up
