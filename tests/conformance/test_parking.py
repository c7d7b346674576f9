"""Jobs a concurrency limit holds back come back, in order, the moment it has room.

A claim that passes over jobs held back by a task's or a key's concurrency limit
may set them aside (parked) so later claims do not read them again; whatever
makes room in that limit must make the next of them claimable again, on every
backend: the running job completing, failing (retried or dead), cancelled,
handed back, unclaimed, or recovered after its worker died; a job let out going
away before it starts; and a worker starting with a higher limit, or none.
"""

from __future__ import annotations

import pytest

from runner.errors import QueueFull
from runner.flow import FlowLimits
from runner.service_sections import RetentionSection
from runner.store.backend import Store
from runner.store.job_rows import Ack, QueueBound
from runner.store.states import JobState
from tests.conformance.helpers import OWNER, T0, failure, job

LEASE = 30.0
ONE_PER_KEY = FlowLimits(key_concurrency={"sync": 1})
ONE_AT_A_TIME = FlowLimits(task_concurrency={"sync": 1})


def claim(store: Store, limits: FlowLimits | None, now: float = T0, want: int = 5,
          queues: tuple[str, ...] = ()) -> list[str]:
    """Claim as a worker does: again at once while the store says to look again now."""
    for _ in range(5):
        result = store.claim(now=now, owner=OWNER, lease_seconds=LEASE, want=want,
                             queues=queues, limits=limits)
        if result.claimed or result.next_due is None or result.next_due > now:
            break
    return [c.id for c in result.claimed]


def held_back(store: Store, limits: FlowLimits, *, queues: tuple[str, ...] = ("default",),
              backlog: int = 30) -> list[str]:
    """One key's backlog, its first job running and the rest held back (and passed over
    by a claim that took the job behind them); the backlog's ids, oldest first."""
    big = [job(T0 - 100 + n, task="sync", concurrency_key="big", queue=queues[n % len(queues)],
               max_attempts=3) for n in range(backlog)]
    behind = job(T0 - 1, task="other")
    store.enqueue([*big, behind], now=T0 - 100)
    assert claim(store, limits, want=1) == [big[0].id]
    assert claim(store, limits) == [behind.id]
    assert claim(store, limits) == []
    store.complete([Ack(behind.id, 1, T0, T0)])
    return [j.id for j in big]


@pytest.mark.parametrize("limits", [ONE_PER_KEY, ONE_AT_A_TIME], ids=["key", "task"])
def test_the_next_held_back_job_starts_when_the_running_one_completes(store, limits):
    big = held_back(store, limits)
    store.complete([Ack(big[0], 1, T0, T0 + 1)])
    assert claim(store, limits, T0 + 1) == [big[1]]
    assert claim(store, limits, T0 + 1) == []
    store.complete([Ack(big[1], 1, T0 + 1, T0 + 2)])
    assert claim(store, limits, T0 + 2) == [big[2]]


@pytest.mark.parametrize("outcome", ["retry", "bury", "cancel_attempt"])
def test_the_next_held_back_job_starts_when_the_running_one_fails_or_is_cancelled(
        store, outcome):
    big = held_back(store, ONE_PER_KEY)
    if outcome == "retry":
        store.retry(big[0], 1, failure(), worker=OWNER, now=T0 + 1, run_at=T0 + 500,
                    reason=None)
    elif outcome == "bury":
        store.bury(big[0], 1, failure(), worker=OWNER, now=T0 + 1, reason=None)
    else:
        store.cancel_attempt(big[0], 1, now=T0 + 1, reason="cancelled by alice")
    assert claim(store, ONE_PER_KEY, T0 + 1) == [big[1]]


def test_a_job_unclaimed_runs_again_before_the_ones_behind_it(store):
    big = held_back(store, ONE_PER_KEY)
    store.unclaim([big[0]])
    assert claim(store, ONE_PER_KEY, T0 + 1) == [big[0]]
    assert claim(store, ONE_PER_KEY, T0 + 1) == []


def test_a_job_handed_back_waits_behind_the_ones_due_before_it(store):
    big = held_back(store, ONE_PER_KEY)
    store.hand_back(big[0], 1, now=T0 + 1, reason="interrupted")  # due again from now
    assert claim(store, ONE_PER_KEY, T0 + 1) == [big[1]]
    assert claim(store, ONE_PER_KEY, T0 + 1) == []


def test_the_job_of_a_dead_worker_runs_again_then_the_next_one(store):
    big = held_back(store, ONE_PER_KEY)
    later = T0 + LEASE + 60
    assert store.recover_orphans(crash_limit=3, now=later).requeued == [big[0]]
    assert claim(store, ONE_PER_KEY, later) == [big[0]]  # a suspect, claimed alone
    store.complete([Ack(big[0], 2, later, later + 1)])
    assert claim(store, ONE_PER_KEY, later + 1) == [big[1]]


def test_a_job_let_out_that_is_cancelled_before_it_starts_lets_the_next_one_out(store):
    big = held_back(store, ONE_PER_KEY)
    store.complete([Ack(big[0], 1, T0, T0 + 1)])
    assert claim(store, ONE_PER_KEY, T0 + 1, queues=("mail",)) == []  # another worker looks
    assert store.cancel_jobs([big[1]], now=T0 + 1) == 1
    assert claim(store, ONE_PER_KEY, T0 + 1) == [big[2]]


def test_a_held_back_job_discarded_then_retried_by_hand_waits_its_turn_again(store):
    big = held_back(store, ONE_PER_KEY)
    assert store.discard_jobs([big[1]], now=T0 + 1) == 1
    assert store.retry_jobs([big[1]], now=T0 + 2) == 1
    assert claim(store, ONE_PER_KEY, T0 + 2) == []  # the key's job still runs
    store.complete([Ack(big[0], 1, T0, T0 + 3)])
    assert claim(store, ONE_PER_KEY, T0 + 3) == [big[2]]  # the retried one is now due last
    store.complete([Ack(big[2], 1, T0 + 3, T0 + 4)])
    assert claim(store, ONE_PER_KEY, T0 + 4) == [big[3]]


def test_each_queue_of_a_key_gets_its_next_job_when_the_key_has_room(store):
    big = held_back(store, ONE_PER_KEY, queues=("default", "mail"))
    store.complete([Ack(big[0], 1, T0, T0 + 1)])
    # A worker of one queue only: the key's next job there, not the older one elsewhere.
    assert claim(store, ONE_PER_KEY, T0 + 1, queues=("mail",)) == [big[1]]
    store.complete([Ack(big[1], 1, T0 + 1, T0 + 2)])
    assert claim(store, ONE_PER_KEY, T0 + 2, queues=("default",)) == [big[2]]


def test_held_back_jobs_wait_in_priority_order_with_aging(store):
    limits = FlowLimits(key_concurrency={"sync": 1}, aging=10)
    fresh = [job(T0 - 5, task="sync", concurrency_key="big", priority=5) for _ in range(3)]
    old = job(T0 - 100, task="sync", concurrency_key="big", priority=0)  # aged 10 levels
    store.enqueue([old, *fresh], now=T0 - 100)
    assert claim(store, limits, want=1) == [old.id]
    assert claim(store, limits) == []
    store.complete([Ack(old.id, 1, T0, T0)])
    assert claim(store, limits) == [fresh[0].id]
    store.complete([Ack(fresh[0].id, 1, T0, T0)])
    assert claim(store, limits) == [fresh[1].id]


@pytest.mark.parametrize("limits", [FlowLimits(key_concurrency={"sync": 2}), None],
                         ids=["raised", "removed"])
def test_a_worker_starting_with_a_higher_limit_or_none_takes_held_back_jobs(store, limits):
    big = held_back(store, ONE_PER_KEY)
    store.release_parked()  # what a worker does as it starts
    got = claim(store, limits, T0 + 1, want=1)
    assert got == [big[1]]
    if limits is None:
        assert claim(store, limits, T0 + 1, want=3) == big[2:5]


def test_held_back_jobs_still_count_as_waiting(store):
    big = held_back(store, ONE_PER_KEY)
    waiting = {s.value for s in (JobState.AVAILABLE, JobState.SCHEDULED)}
    assert sum(n for q, s, n in store.unfinished_by_queue()
               if q == "default" and s in waiting) == len(big) - 1
    assert dict(store.queue_oldest(T0))["default"] == T0 - 100 + 1
    assert store.waiting_size(now=T0, due=True) == len(big) - 1


def test_a_queue_of_held_back_jobs_alone_keeps_its_count_through_upkeep(store):
    # Given a key's backlog in a queue of its own, its running job just completed: what
    # is left is parked until the next claim lets it out
    big = held_back(store, ONE_PER_KEY, queues=("tenant",))
    store.complete([Ack(big[0], 1, T0, T0 + 1)])
    # When the retention pass looks for idle queues, Then it forgets at most the emptied
    # default queue (what it keeps of a queue differs by backend): the tenant queue's
    # jobs wait, parked or not
    assert store.prune_retention(RetentionSection(vacuum=False), now=T0 + 1,
                                 keep_queues=()).forgotten_queues <= 1
    # and the queue still counts its held-back jobs, which run in order
    with pytest.raises(QueueFull) as full:
        store.enqueue([job(queue="tenant") for _ in range(len(big))], now=T0 + 1,
                      bounds={"tenant": QueueBound(len(big), "reject")})
    assert full.value.room == 1
    assert claim(store, ONE_PER_KEY, T0 + 1) == [big[1]]
