"""What settings say about limits reaches every backend's claim, and a blocked producer
is woken by the backend when room appears.

The runner (``huey`` fixture) works on the backend's data with settings loaded
from a file, as a worker started by an operator would.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from runner import configure
from runner.settings_loader import load_settings
from runner.store.states import JobState
from tests import jobs


def reconfigure(settings_file, extra: str, environ: dict[str, str] | None = None):
    settings_file.write_text(settings_file.read_text() + extra)
    return configure(load_settings(settings_file, environ=environ or {}))


def claimed_ids(huey, want: int = 10) -> list[str]:
    return [c.id for c in huey.jobs.claim_due(want)]


def test_a_task_section_limits_how_many_run_at_once(huey, settings_file, store):
    reconfigure(settings_file, "\n[tasks.add]\nconcurrency = 1\n")
    results = [jobs.add(1, n) for n in range(3)]
    assert len(claimed_ids(huey)) == 1
    assert len(claimed_ids(huey)) == 0  # the first still runs: the others wait
    assert {store.get_job(r.id).attempt for r in results} <= {0, 1}


def test_a_task_section_rate_limit_holds_back_starts(huey, settings_file, store):
    reconfigure(settings_file, '\n[tasks.noop]\nrate_limit = "1/h"\n')
    results = [jobs.noop(n) for n in range(3)]
    assert len(claimed_ids(huey)) == 1
    assert claimed_ids(huey) == []
    waiting = [r.id for r in results if store.get_job(r.id).state == JobState.AVAILABLE]
    assert len(waiting) == 2


def test_the_environment_form_of_a_queue_section_limits_the_claim(huey, settings_file):
    reconfigure(settings_file, "", environ={"WORKER_QUEUE_CONCURRENCY": "default=2"})
    for n in range(4):
        jobs.add(1, n)
    assert len(claimed_ids(huey)) == 2


def test_a_blocked_producer_goes_on_soon_after_a_claim_makes_room(huey, settings_file, store):
    settings = reconfigure(settings_file, (
        '\n[tasks.noop]\nqueue = "narrow"\n'
        '[queues.narrow]\nmax_size = 2\non_full = "block"\nblock_timeout = 60\n'))
    # The fallback poll is far longer than the test waits: only a wake-up is in time.
    configure(replace(settings, worker=replace(settings.worker, poll_interval=60.0)))
    jobs.noop(1), jobs.noop(2)
    assert store.waiting_in_queue("narrow") == 2
    done = threading.Event()

    def produce() -> None:
        jobs.noop(3)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        assert not done.wait(0.2)  # the queue is full: the producer waits
        assert len(claimed_ids(huey, 1)) == 1
        assert done.wait(10), "the producer did not go on after the claim made room"
    finally:
        producer.join(70)
    assert store.waiting_in_queue("narrow") == 2


def test_a_waiting_producer_is_woken_by_room_made_through_another_handle(store, another):
    waiter = store.room_waiter()
    assert waiter is not None
    other = another()
    try:
        assert waiter.wait(0.05) is False  # nothing happened: it times out
        other.made_room()  # before the wait: kept, not lost
        assert waiter.wait(10) is True
        other.made_room()
        other.made_room()
        assert waiter.wait(10) is True
    finally:
        waiter.close()
        other.close()
