"""RateHistory keeps per-second counts and agrees with a full read of the hour."""

from __future__ import annotations

import time

from runner.readmodel import dashboard as dq
from runner.store.factory import open_store
from runner.testing import drain
from tests import jobs
from tui.rates import RateHistory


def test_incremental_history_matches_a_full_read(huey):
    for i in range(5):
        jobs.add(i, i)
    jobs.always_fails("r")
    drain(include_scheduled=True)
    store = open_store(huey.jobs.path, readonly=True)
    now = time.time()
    history = RateHistory()
    history.chunk = 60  # back-fill one minute per refresh
    for _ in range(61):
        got = history.update(store, now)
    assert got == dq.throughput(store, now)
    assert sum(got[0]) == 5 and sum(got[1]) == 3
    for i in range(2):
        jobs.add(i, i)
    drain()
    later = time.time()
    assert sum(history.update(store, later)[0]) == 7  # new completions are added once
    assert sum(history.update(store, later)[0]) == 7  # and re-reading does not count twice
