"""How many jobs a claim takes: one per idle thread, and ``prefetch`` ahead or more while
attempts are short; which thread takes them, and when they go back to the queue."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from runner import configure
from runner.store import job_storage
from runner.store.states import JobState
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


def hold_four_ahead_of_a_busy_thread(storage, huey):
    """The one thread busy, with four jobs it claimed ahead while jobs were short."""
    settle_durations(storage, 0.0001)
    backlog(huey, 5)
    busy = storage.claim_next()
    assert len(storage._buffer) == 4
    return busy, [c.id for c in storage._buffer]


def test_jobs_claimed_ahead_that_no_thread_took_go_back_uncharged_for_an_idle_worker(
        huey, monkeypatch):
    storage = huey.jobs
    woken = []
    monkeypatch.setattr(storage.store, "wakeup", lambda: woken.append(1))
    busy, held = hold_four_ahead_of_a_busy_thread(storage, huey)
    # Given another worker whose last heartbeat says it has a thread free
    storage.store.register("elsewhere:1:1", concurrency=4, queues=())
    # Then they stay while they wait no longer than jobs claimed ahead should
    assert storage.hand_back_stale(time.monotonic()) == []
    # But once they waited many times that, they go back to the queue, the others woken
    late = time.monotonic() + job_storage._STALE_AHEAD
    assert storage.hand_back_stale(late) == held
    assert not storage._buffer and woken
    rows = [storage.store.get_job(i) for i in held]
    assert {(r.state, r.attempt) for r in rows} == {(JobState.AVAILABLE, 0)}
    assert storage.store.get_job(busy.id).state == JobState.EXECUTING
    assert storage.inflight_ids() == [busy.id]


def test_jobs_claimed_ahead_stay_while_no_other_worker_has_a_thread_free(huey):
    # Handed back, they would only wait for this worker's threads again.
    storage = huey.jobs
    busy, held = hold_four_ahead_of_a_busy_thread(storage, huey)
    late = time.monotonic() + job_storage._STALE_AHEAD
    assert storage.hand_back_stale(late) == []  # no other worker
    storage.store.register("elsewhere:1:1", concurrency=2, queues=())
    storage.store.heartbeat("elsewhere:1:1", [], lease_seconds=60, running=2)
    assert storage.hand_back_stale(late) == []  # its threads all busy
    storage.store.register("other-queue:1:1", concurrency=2, queues=("reports",))
    assert storage.hand_back_stale(late) == []  # free, but for another queue
    assert [c.id for c in storage._buffer] == held


def test_a_consuming_worker_hands_back_stale_jobs_claimed_ahead_while_its_threads_are_busy(
        huey):
    storage = huey.jobs
    storage.store.register("elsewhere:1:1", concurrency=4, queues=())
    storage.start_consuming("host:1:1")
    try:
        busy, _ = hold_four_ahead_of_a_busy_thread(storage, huey)
        # No thread takes them: the one is busy, so the check must not wait for it. The
        # buffer empties before the hand-back is written: wait for its end.
        wait_for(lambda: storage.inflight_ids() == [busy.id], timeout=10,
                 message="the jobs claimed ahead to go back to the queue")
        assert not storage._buffer
    finally:
        storage.stop_consuming()


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
