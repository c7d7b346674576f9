"""Wake-ups over Redis pub/sub (runner.store.redis.wakeups)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.store.redis import RedisStore, wakeups
from tests.conftest import wait_for
from tests.redis_support import fresh_store


@pytest.fixture
def store() -> Iterator[RedisStore]:
    with fresh_store() as opened:
        yield opened


def test_an_idle_listener_stops_without_waiting_out_its_receive(store, monkeypatch):
    # A worker stopped while idle used to sit in get_message until its timeout.
    monkeypatch.setattr(wakeups, "RECEIVE_TIMEOUT", 60.0)
    wakes: list[int] = []
    listener = wakeups.RedisListener(store, lambda: wakes.append(1))
    listener.start()
    wait_for(lambda: wakes, timeout=10.0, message="the wake-up a listener gives at start")
    wait_for(lambda: store.r.pubsub_numsub(store.k("wake"))[0][1] == 1, timeout=10.0,
             message="the listener's subscription")
    listener.stop()
    assert listener._thread is not None and not listener._thread.is_alive()
    assert wakes == [1]  # its stop message was not a wake-up
