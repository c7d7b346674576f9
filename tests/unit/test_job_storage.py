"""How many jobs a claim takes: one per idle thread, and ``prefetch`` ahead or more while
attempts are short."""

from __future__ import annotations

import threading
from dataclasses import replace

from runner import configure
from runner.store import job_storage
from tests import jobs
from tests.conftest import wait_for


def backlog(huey, count: int) -> None:
    jobs.noop.map(range(count))


def settle_durations(storage, seconds: float) -> None:
    for n in range(100):
        storage.ack_completed(f"x{n}", 1, started_at=100.0, finished_at=100.0 + seconds)
    storage._acks.clear()


def test_a_claim_takes_none_ahead_while_attempts_are_long_only_one_per_idle_thread(huey):
    # Held ahead of a thread busy for seconds, a job would wait as long while another
    # worker's threads may be idle.
    backlog(huey, 100)
    storage = huey.jobs
    settle_durations(storage, 2.0)
    assert storage.claim_next() is not None
    assert len(storage._buffer) == 0
    storage._idle = 3  # three threads wait for work: the claim takes a job for each
    assert storage.claim_next() is not None
    storage._idle = 0
    assert len(storage._buffer) == 3


def test_a_worker_that_has_not_timed_an_attempt_yet_takes_none_ahead(huey):
    backlog(huey, 100)
    storage = huey.jobs
    assert storage.claim_next() is not None
    assert len(storage._buffer) == 0


def test_a_claim_takes_prefetch_ahead_while_attempts_are_short(huey):
    backlog(huey, 100)
    storage = huey.jobs
    settle_durations(storage, 0.004)  # 20 ms of them would be fewer than prefetch
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


class IdleThread:
    """A worker thread that waits for work, as huey's loop calls claim_next: again and
    again until it gets a job, which it keeps."""

    def __init__(self, storage) -> None:
        self.storage = storage
        self.took: list = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.took and not self.storage._stopping:
            claimed = self.storage.claim_next()
            if claimed is not None:
                self.took.append(claimed)

    def start_waiting(self) -> IdleThread:
        self.thread.start()
        wait_for(lambda: self.storage._idle >= 1, message="the thread to wait for work")
        return self

    def stop(self) -> None:
        self.storage.pause_claims()
        self.thread.join(10)

    @classmethod
    def takes_a_job(cls, storage, message: str) -> IdleThread:
        """Start one and wait until it took a job (the test fails at the deadline)."""
        idle = cls(storage)
        idle.thread.start()
        try:
            wait_for(lambda: idle.took, timeout=10, message=message)
        finally:
            idle.stop()
        return idle


def test_short_jobs_claimed_ahead_go_to_the_busy_thread_not_to_idle_ones(huey, monkeypatch):
    monkeypatch.setattr(job_storage, "_SPREAD_AFTER", 60.0)
    storage = huey.jobs
    settle_durations(storage, 0.0001)
    backlog(huey, 30)
    first = storage.claim_next()
    assert len(storage._buffer) == 29
    idle = IdleThread(storage).start_waiting()
    try:
        taken = [first] + [storage.claim_next() for _ in range(29)]  # job after job
        assert None not in taken and len({c.id for c in taken}) == 30
        assert idle.took == []
    finally:
        idle.stop()


def test_a_short_job_held_ahead_too_long_goes_to_an_idle_thread(huey, monkeypatch):
    # The busy thread took one job and is stuck in it: the jobs it claimed ahead must
    # not wait for it.
    monkeypatch.setattr(job_storage, "_SPREAD_AFTER", 0.05)
    storage = huey.jobs
    settle_durations(storage, 0.0001)
    backlog(huey, 5)
    busy = storage.claim_next()
    idle = IdleThread(storage).start_waiting()
    try:
        wait_for(lambda: idle.took, timeout=10, message="an idle thread to take a job")
        assert idle.took[0].id != busy.id
    finally:
        idle.stop()


def test_long_jobs_claimed_for_idle_threads_go_to_them_at_once(huey, monkeypatch):
    monkeypatch.setattr(job_storage, "_SPREAD_AFTER", 60.0)
    storage = huey.jobs
    settle_durations(storage, 2.0)
    backlog(huey, 5)
    storage._idle = 1  # one thread waits for work: the claim takes a job for it too
    assert storage.claim_next() is not None
    storage._idle = 0
    assert len(storage._buffer) == 1
    IdleThread.takes_a_job(storage, "the idle thread to take a job")


def test_without_prefetch_a_job_claimed_for_an_idle_thread_goes_to_it_at_once(huey, monkeypatch):
    # prefetch 0 claims one job per idle thread and none ahead: each is that thread's.
    monkeypatch.setattr(job_storage, "_SPREAD_AFTER", 60.0)
    configure(replace(huey.settings, worker=replace(huey.settings.worker, prefetch=0)))
    storage = huey.jobs
    settle_durations(storage, 0.0001)
    backlog(huey, 5)
    storage._idle = 1  # one thread waits for work: the claim takes a job for it too
    assert storage.claim_next() is not None
    storage._idle = 0
    assert len(storage._buffer) == 1
    IdleThread.takes_a_job(storage, "the idle thread to take its job")


def test_a_thread_started_after_a_written_off_one_ended_is_not_written_off(huey):
    # Thread idents are reused: a thread started once a written-off one has ended often
    # gets its ident (here it always did), and must not be taken for it.
    storage = huey.jobs
    seen: dict[str, bool] = {}

    def look(name: str) -> None:
        seen[name] = storage.is_retired(threading.current_thread())

    written_off = threading.Thread(target=look, args=("written off",))
    written_off.start()
    written_off.join()
    storage.retire_thread(written_off)
    later = threading.Thread(target=look, args=("later",))
    later.start()
    later.join()
    assert storage.is_retired(written_off)
    assert seen["later"] is False
