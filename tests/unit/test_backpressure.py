"""A full queue from the producer's side: ``[queues.NAME] on_full`` and ``block_timeout``."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from runner import QueueFull, configure, enqueue_many
from runner.sections import QueueSection
from runner.store.sqlite import queries
from runner.testing import drain
from tests import jobs


def bounded(huey, **section):
    settings = huey.settings
    configure(replace(settings, worker=replace(settings.worker, queue_size=5),
                      queues={"default": QueueSection(**section)}))


def waiting(huey) -> int:
    return huey.jobs.store.waiting_in_queue("default")


def test_a_plain_queue_blocks_by_default_until_a_worker_makes_room(huey):
    bounded(huey, block_timeout=30)
    seen: list[int] = []
    done = threading.Event()

    def worker() -> None:
        while not done.is_set():
            seen.append(waiting(huey))
            huey.run_one()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        results = jobs.add.map([(1, n) for n in range(40)], batch_size=16)
        single = jobs.add(2, 2)
    finally:
        done.set()
        thread.join(30)
    drain()
    assert max(seen) <= 5
    assert [r.get() for r in results] == [1 + n for n in range(40)]
    assert single.get() == 4
    assert queries.count_jobs(huey.jobs.db) == 41


def test_block_gives_up_after_its_timeout_and_counts_one_rejection(huey):
    bounded(huey, block_timeout=0.3)
    jobs.add.map([(1, n) for n in range(5)])
    started = time.monotonic()
    with pytest.raises(QueueFull, match=r"waited 0.3s \(block_timeout\) for room: "
                                         r"queue 'default' is full"):
        jobs.add(1, 99)
    assert 0.3 <= time.monotonic() - started < 5
    assert huey.jobs.store.backpressure_totals()["default"] == (1, 0)
    assert queries.count_jobs(huey.jobs.db) == 5


def test_reject_refuses_at_once_and_writes_nothing(huey):
    bounded(huey, on_full="reject")
    jobs.add.map([(1, n) for n in range(5)])
    started = time.monotonic()
    with pytest.raises(QueueFull) as raised:
        enqueue_many([jobs.add.s(1, 1), jobs.add.s(1, 2)])
    assert time.monotonic() - started < 1
    assert raised.value.queue == "default"
    assert queries.count_jobs(huey.jobs.db) == 5
    assert huey.jobs.store.backpressure_totals()["default"] == (2, 0)


def test_drop_oldest_makes_room_by_cancelling_the_oldest_waiting_jobs(huey):
    bounded(huey, on_full="drop_oldest")
    first = jobs.add.map([(1, n) for n in range(5)])
    later = jobs.add.map([(2, n) for n in range(3)])
    assert waiting(huey) == 5
    for r in list(first)[:3]:
        row = queries.get_job(huey.jobs.db, r.id)
        assert row.state == "cancelled" and "dropped" in (row.reason or "")
    assert drain() == 5
    assert [r.get() for r in later] == [2, 3, 4]
    assert huey.jobs.store.backpressure_totals()["default"] == (0, 3)


def test_max_size_of_a_queue_wins_over_the_worker_queue_size(huey):
    bounded(huey, on_full="reject", max_size=0)  # 0: this queue is unbounded
    jobs.add.map([(1, n) for n in range(20)])
    assert queries.count_jobs(huey.jobs.db) == 20


def test_rejections_drops_and_pauses_are_exported_for_prometheus(huey):
    from runner import pause_queue
    from runner.readmodel.prometheus import render_database
    from runner.store.sqlite.scrape_reads import read_database

    bounded(huey, on_full="reject")
    jobs.add.map([(1, n) for n in range(5)])
    with pytest.raises(QueueFull):
        jobs.add(1, 1)
    pause_queue("default")
    text = render_database(read_database(huey.jobs.db))
    assert 'jobrunner_queue_rejected_total{queue="default"} 1' in text
    assert 'jobrunner_queue_dropped_total{queue="default"} 0' in text
    assert 'jobrunner_queue_paused{queue="default"} 1' in text


def test_a_blocked_producer_goes_on_when_a_waiting_job_is_cancelled(huey):
    from runner.control import cancel_jobs

    settings = huey.settings
    configure(replace(settings, worker=replace(settings.worker, queue_size=2, poll_interval=60),
                      queues={"default": QueueSection(block_timeout=60)}))
    first = jobs.add.map([(1, 1), (1, 2)])
    done = threading.Event()

    def produce() -> None:
        jobs.add(1, 3)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        assert not done.wait(0.2)  # full: the producer waits
        assert cancel_jobs(huey.jobs.store, [list(first)[0].id]) == 1
        assert done.wait(10), "cancelling a waiting job did not wake the producer"
    finally:
        producer.join(70)
    assert waiting(huey) == 2


def test_a_queue_held_by_jobs_scheduled_for_later_says_so_and_asks_for_no_workers(huey):
    # Given a queue bounded at 3 whose three jobs are due in an hour
    bounded(huey, max_size=3, on_full="block", block_timeout=0.2)
    for n in range(3):
        jobs.add.schedule((1, n), delay=3600)
    # When a job due now comes and no room appears
    with pytest.raises(QueueFull) as raised:
        jobs.add(1, 99)
    # Then the message counts them as the bound does, and more workers would not help
    assert str(raised.value) == (
        "waited 0.2s (block_timeout) for room: queue 'default' is full: 3 jobs waiting "
        "(0 ready, 3 scheduled or retrying), its bound is 3; nothing was written (scheduled "
        "and retrying jobs hold their room until they run: raise [worker] queue_size or "
        "[queues.default] max_size)")


def test_a_queue_full_of_ready_jobs_asks_for_more_workers(huey):
    bounded(huey, max_size=3, on_full="reject")
    jobs.add.map([(1, n) for n in range(2)])
    jobs.add.schedule((1, 2), delay=3600)
    with pytest.raises(QueueFull) as raised:
        jobs.add(1, 99)
    assert str(raised.value) == (
        "queue 'default' is full: 3 jobs waiting (2 ready, 1 scheduled or retrying), its "
        "bound is 3; nothing was written (raise [worker] queue_size or [queues.default] "
        "max_size, or start more workers)")


def test_a_full_paused_queue_says_it_is_paused(huey):
    from runner import pause_queue

    bounded(huey, max_size=3, on_full="reject")
    jobs.add.map([(1, n) for n in range(3)])
    pause_queue("default")
    with pytest.raises(QueueFull) as raised:
        jobs.add(1, 99)
    assert str(raised.value) == (
        "queue 'default' is full: 3 jobs waiting (3 ready, 0 scheduled or retrying), its "
        "bound is 3; nothing was written (queue 'default' is paused: resume it with "
        "`python -m runner queues resume default`, or raise [worker] queue_size or "
        "[queues.default] max_size)")
