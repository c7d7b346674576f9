"""Upkeep forgets the bookkeeping of idle queues (no job waiting, scheduled or running,
not in settings): counts stay exact, and a forgotten queue used again works as new.

Apps that use a queue per tenant leave behind a waiting count and a share turn per
name ever used; the retention pass drops them, so claims and bounds cost what the
queues in use cost, never what the history of names does.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from runner.errors import QueueFull
from runner.flow import FlowLimits
from runner.service_sections import RetentionSection
from runner.store.backend import Store
from runner.store.job_rows import Ack, QueueBound
from tests.conformance.helpers import OWNER, T0, job

#: A bound no test reaches: what a queue's count says is read from the room it leaves.
PROBE = 50


def counted(store: Store, queue: str) -> int:
    """The waiting jobs a queue bound counts in ``queue`` (nothing is written)."""
    with pytest.raises(QueueFull) as raised:
        store.enqueue([job(queue=queue) for _ in range(PROBE + 1)], now=T0,
                      bounds={queue: QueueBound(PROBE, "block")})
    return PROBE - raised.value.room


def upkeep(store: Store, keep: tuple[str, ...] = ()) -> int:
    """One retention pass that deletes no job; the idle queues it forgot."""
    return store.prune_retention(RetentionSection(vacuum=False), now=T0,
                                 keep_queues=keep).forgotten_queues


def drain(store: Store, queues: tuple[str, ...] = (), limits: FlowLimits | None = None) -> None:
    while claimed := store.claim(now=T0, owner=OWNER, lease_seconds=30, want=50,
                                 queues=queues, limits=limits).claimed:
        store.complete([Ack(c.id, 1, T0, T0) for c in claimed])


def test_upkeep_keeps_the_counts_of_queues_with_jobs_and_forgets_once(store):
    shares = FlowLimits(weights={"configured": 2})
    store.enqueue([job(queue=f"tenant-{n}") for n in range(5)]
                  + [job(queue="configured"), job(queue="running")], now=T0)
    drain(store, limits=shares)
    store.enqueue([job(queue="running"), job(queue="waiting"),
                   job(T0 + 3600, queue="scheduled")], now=T0)
    assert len(store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1,
                           queues=("running",)).claimed) == 1
    assert upkeep(store, keep=("configured",)) > 0
    assert upkeep(store, keep=("configured",)) == 0
    assert [counted(store, q) for q in ("waiting", "scheduled", "running", "tenant-0")] == [
        1, 1, 0, 0]


def test_a_dry_run_counts_the_idle_queues_and_forgets_none(store):
    # Uneven shares leave the tenants' turns apart from 0: every backend keeps those.
    store.enqueue([job(queue=f"tenant-{n}") for n in range(3) for _ in range(n + 1)], now=T0)
    drain(store, limits=FlowLimits(weights={"tenant-1": 3}))
    dry = store.prune_retention(RetentionSection(), now=T0, dry_run=True).forgotten_queues
    assert dry > 0 and upkeep(store) == dry
    assert upkeep(store) == 0


def test_counts_stay_exact_across_upkeep(store):
    store.enqueue([job(queue=q) for q in ("a", "a", "a", "b", "c")]
                  + [job(T0 + 60, queue="b")], now=T0)
    drain(store, queues=("c",))
    claimed = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1, queues=("a",))
    upkeep(store)
    assert [counted(store, q) for q in ("a", "b", "c")] == [2, 2, 0]
    store.hand_back(claimed.claimed[0].id, None, now=T0, reason="stopping")  # waits again
    store.enqueue([job(queue="c")], now=T0)
    assert [counted(store, q) for q in ("a", "b", "c")] == [3, 2, 1]


def test_a_forgotten_queue_used_again_keeps_its_bound(store):
    bound = {"tenant": QueueBound(3, "reject")}
    store.enqueue([job(queue="tenant") for _ in range(3)], now=T0, bounds=bound)
    drain(store)
    upkeep(store)
    store.enqueue([job(queue="tenant") for _ in range(3)], now=T0, bounds=bound)
    with pytest.raises(QueueFull):
        store.enqueue([job(queue="tenant")], now=T0, bounds=bound)
    assert len(store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1).claimed) == 1
    store.enqueue([job(queue="tenant")], now=T0, bounds=bound)
    assert counted(store, "tenant") == 3


def test_a_forgotten_queue_used_again_takes_its_share(store):
    limits = FlowLimits(weights={"big": 3})
    store.enqueue([job(queue=q) for q in ("big", "small") for _ in range(7)], now=T0)
    drain(store, limits=limits)
    upkeep(store)
    store.enqueue([job(T0 - 100 + n * 0.01, queue=q) for n in range(40)
                   for q in ("big", "small")], now=T0)
    for _ in range(5):
        result = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=4, limits=limits)
        assert Counter(store.get_job(c.id).queue for c in result.claimed) == {
            "big": 3, "small": 1}


def test_enqueues_racing_with_upkeep_are_counted_exactly(store, another):
    # Each producer empties and refills a queue of its own, under shares, while upkeep
    # keeps forgetting the queues it finds idle: every job left waiting is counted.
    producers, rounds = 4, 14
    handles = [another() for _ in range(producers + 1)]
    done = threading.Event()
    errors: list[BaseException] = []

    def produce(handle: Store, n: int) -> None:
        queue = f"tenant-{n}"
        shares = FlowLimits(weights={queue: 2})
        for r in range(rounds):
            handle.enqueue([job(queue=queue), job(queue=queue)], now=T0)
            claimed = handle.claim(now=T0, owner=OWNER, lease_seconds=30, want=1,
                                   queues=(queue,), limits=shares).claimed
            handle.complete([Ack(c.id, 1, T0, T0) for c in claimed])
            if r % 4 == 3:
                drain(handle, (queue,), shares)

    def clean(handle: Store) -> None:
        while not done.is_set():
            upkeep(handle)

    def guarded(work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    cleaner = threading.Thread(target=guarded, args=(lambda: clean(handles[-1]),))
    cleaner.start()
    threads = [threading.Thread(target=guarded, args=(lambda n=n: produce(handles[n], n),))
               for n in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    cleaner.join(60)
    assert not errors, errors
    # Drained after rounds 3, 7 and 11: rounds 12 and 13 left a job each.
    assert [counted(store, f"tenant-{n}") for n in range(producers)] == [2] * producers
    drain(store)
    upkeep(store)
    store.enqueue([job(queue="tenant-0")], now=T0)
    assert counted(store, "tenant-0") == 1
