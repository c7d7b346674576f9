"""SQLite: what a claim costs follows what it takes, never a backlog it does not take
from (another worker's queues, a paused queue). Measured in SQLite virtual machine
steps, which the same data and statements always repeat."""

from __future__ import annotations

import pytest

from runner.config import DatabaseSection
from runner.flow import FlowLimits
from runner.service_sections import RetentionSection
from runner.store.job_rows import Ack
from runner.store.sqlite import SqliteStore
from runner.store.sqlite.db import Database
from runner.store.sqlite.schema import prepare_database
from tests.conformance.helpers import OWNER, T0, job

#: Steps a claim may take beyond the same claim without the backlog: a few index
#: seeks, never a read of the backlog's jobs (a thousand of them cost ~20,000 steps).
SLACK = 2_000


def _store(tmp_path, name: str) -> SqliteStore:
    db = Database(tmp_path / f"{name}.db", DatabaseSection(synchronous="NORMAL"))
    prepare_database(db)
    return SqliteStore(db)


class _Steps:
    def __init__(self, store: SqliteStore) -> None:
        self.count = 0
        store.db.connection().set_progress_handler(self._tick, 10)

    def _tick(self) -> int:
        self.count += 10
        return 0


def claim_steps(tmp_path, backlog: int, *, ahead, behind, limits=None, queues=(),
                prepare=lambda store: None) -> int:
    """VM steps of the claims that take ``behind``'s jobs, with ``backlog`` jobs of
    ``ahead`` waiting before them."""
    store = _store(tmp_path, f"jobs-{backlog}")
    store.enqueue([ahead(n) for n in range(backlog)], now=T0)
    wanted = [behind(n) for n in range(12)]
    store.enqueue(wanted, now=T0)
    prepare(store)
    steps = _Steps(store)
    taken = []
    for _ in range(3):
        result = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=4, queues=queues,
                             limits=limits)
        taken += [c.id for c in result.claimed]
        store.complete([Ack(c.id, 1, T0, T0) for c in result.claimed])
    assert sorted(taken) == sorted(j.id for j in wanted)
    return steps.count


SCENARIOS = {
    # A worker of the mail and sms queues; bulk's backlog is older.
    "another-workers-queue": dict(
        ahead=lambda n: job(T0 - 1000 + n * 0.01, queue="bulk"),
        behind=lambda n: job(T0 - 1 + n * 0.01, queue=("mail", "sms")[n % 2]),
        queues=("mail", "sms")),
    "another-workers-queue-aging": dict(
        ahead=lambda n: job(T0 - 1000 + n * 0.01, queue="bulk"),
        behind=lambda n: job(T0 - 1 + n * 0.01, queue=("mail", "sms")[n % 2],
                             priority=n % 2),
        queues=("mail", "sms"), limits=FlowLimits(aging=300)),
    "paused-queue": dict(
        ahead=lambda n: job(T0 - 1000 + n * 0.01, queue="bulk"),
        behind=lambda n: job(T0 - 1 + n * 0.01, queue=("mail", "sms")[n % 2]),
        prepare=lambda store: store.set_pause("queue", "bulk", True, now=T0)),
    "paused-queue-with-limits": dict(
        ahead=lambda n: job(T0 - 1000 + n * 0.01, queue="bulk"),
        behind=lambda n: job(T0 - 1 + n * 0.01, queue=("mail", "sms")[n % 2]),
        limits=FlowLimits(task_concurrency={"other": 3}, aging=300),
        prepare=lambda store: store.set_pause("queue", "bulk", True, now=T0)),
    # Jobs due tomorrow at a higher priority than the jobs due now (delayed, retrying).
    "due-later-higher-priority": dict(
        ahead=lambda n: job(T0 + 86_400 + n * 0.01, priority=10),
        behind=lambda n: job(T0 - 1 + n * 0.01)),
    "due-later-higher-priority-of-some-queues": dict(
        ahead=lambda n: job(T0 + 86_400 + n * 0.01, priority=10, queue=("mail", "sms")[n % 2]),
        behind=lambda n: job(T0 - 1 + n * 0.01, queue=("mail", "sms")[n % 2]),
        queues=("mail", "sms")),
    "due-later-higher-priority-with-limits": dict(
        ahead=lambda n: job(T0 + 86_400 + n * 0.01, priority=10),
        behind=lambda n: job(T0 - 1 + n * 0.01),
        limits=FlowLimits(task_concurrency={"other": 3})),
    "due-later-higher-priority-with-shares": dict(
        ahead=lambda n: job(T0 + 86_400 + n * 0.01, priority=10, queue=("mail", "sms")[n % 2]),
        behind=lambda n: job(T0 - 1 + n * 0.01, queue=("mail", "sms")[n % 2]),
        limits=FlowLimits(weights={"mail": 2, "sms": 1})),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_claim_does_not_read_a_backlog_it_does_not_take_from(tmp_path, scenario):
    small = claim_steps(tmp_path / "small", 10, **SCENARIOS[scenario])
    large = claim_steps(tmp_path / "large", 5_000, **SCENARIOS[scenario])
    assert large <= small + SLACK, (small, large)


def shared_claim_steps(store: SqliteStore) -> int:
    """VM steps of a claim of 4 under queue shares from two queues of 4 due jobs."""
    store.enqueue([job(queue=q) for q in ("mail", "sms") for _ in range(4)], now=T0)
    steps = _Steps(store)
    result = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=4,
                         limits=FlowLimits(weights={"mail": 3}))
    assert len(result.claimed) == 4
    return steps.count


def test_queues_used_once_cost_a_claim_nothing_once_upkeep_forgot_them(tmp_path):
    # A queue per tenant, each used once and empty now: 2,000 of them made each claim
    # read a waiting count and a share turn per name (~25,500 steps instead of ~1,500).
    fresh = shared_claim_steps(_store(tmp_path, "fresh"))
    store = _store(tmp_path, "used")
    store.enqueue([job(queue=f"tenant-{n}") for n in range(2_000)], now=T0)
    while claimed := store.claim(now=T0, owner=OWNER, lease_seconds=30, want=100,
                                 limits=FlowLimits(weights={"mail": 3})).claimed:
        store.complete([Ack(c.id, 1, T0, T0) for c in claimed])
    store.prune_retention(RetentionSection(vacuum=False), now=T0)
    assert shared_claim_steps(store) <= fresh + SLACK


def test_a_shared_claim_writes_no_turn_for_queues_with_nothing_due(tmp_path):
    # Queues holding only jobs due tomorrow take no turn: their counters are not
    # rewritten by every claim (2,000 of them cost ~85,000 steps a claim).
    store = _store(tmp_path, "later")
    store.enqueue([job(T0 + 86_400, queue=f"tenant-{n}") for n in range(500)], now=T0)
    shared_claim_steps(store)
    assert {k for (k,) in store.db.query("SELECT key FROM runner_flow")} <= {
        "turn:mail", "turn:sms"}


#: The limits holding one key's (or one task's) backlog back, and the jobs behind it.
HELD = {
    "key": (FlowLimits(key_concurrency={"sync": 1}),
            lambda n: job(T0 - 1000 + n * 0.01, task="sync", concurrency_key="big"),
            lambda n: job(T0 - 1 + n * 0.01, task="sync", concurrency_key=f"user-{n}")),
    "task": (FlowLimits(task_concurrency={"sync": 1}),
             lambda n: job(T0 - 1000 + n * 0.01, task="sync"),
             lambda n: job(T0 - 1 + n * 0.01, task="mail")),
}


def held_claim_steps(tmp_path, backlog: int, hold: str) -> int:
    """VM steps of the claims that take the jobs behind ``backlog`` held-back ones, and of
    one more that finds nothing, once a first claim has passed over the backlog."""
    limits, ahead, behind = HELD[hold]
    store = _store(tmp_path, f"held-{backlog}")
    held = [ahead(n) for n in range(backlog)]
    store.enqueue(held, now=T0)
    wanted = [behind(n) for n in range(16)]
    store.enqueue(wanted, now=T0)
    first = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1, limits=limits)
    assert [c.id for c in first.claimed] == [held[0].id]  # the limit is reached
    taken = [c.id for c in store.claim(now=T0, owner=OWNER, lease_seconds=30, want=4,
                                       limits=limits).claimed]
    steps = _Steps(store)
    for _ in range(4):
        result = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=4, limits=limits)
        taken += [c.id for c in result.claimed]
        store.complete([Ack(c.id, 1, T0, T0) for c in result.claimed])
    assert sorted(taken) == sorted(j.id for j in wanted)
    return steps.count


@pytest.mark.parametrize("hold", sorted(HELD))
def test_a_claim_does_not_read_again_the_jobs_a_concurrency_limit_holds_back(tmp_path, hold):
    small = held_claim_steps(tmp_path / "small", 10, hold)
    large = held_claim_steps(tmp_path / "large", 5_000, hold)
    assert large <= small + SLACK, (small, large)
