"""How many jobs a claim takes: ``prefetch`` ahead, more while attempts are short."""

from __future__ import annotations

from dataclasses import replace

from runner import configure
from tests import jobs


def backlog(huey, count: int) -> None:
    jobs.noop.map(range(count))


def settle_durations(storage, seconds: float) -> None:
    for n in range(100):
        storage.ack_completed(f"x{n}", 1, started_at=100.0, finished_at=100.0 + seconds)
    storage._acks.clear()


def test_a_claim_takes_prefetch_ahead_while_attempts_are_long(huey):
    backlog(huey, 100)
    storage = huey.jobs
    settle_durations(storage, 2.0)
    assert storage.claim_next() is not None
    assert len(storage._buffer) == huey.settings.worker.prefetch


def test_a_claim_takes_more_ahead_while_attempts_are_short(huey):
    backlog(huey, 100)
    storage = huey.jobs
    settle_durations(storage, 0.001)
    assert storage.claim_next() is not None
    assert 15 <= len(storage._buffer) <= 19  # about 20 ms of 1 ms jobs


def test_no_prefetch_means_one_job_per_claim_however_short(huey):
    configure(replace(huey.settings, worker=replace(huey.settings.worker, prefetch=0)))
    backlog(huey, 100)
    storage = huey.jobs
    settle_durations(storage, 0.0001)
    assert storage.claim_next() is not None
    assert len(storage._buffer) == 0
