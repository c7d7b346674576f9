"""Redis: jobs held back by their task or key are parked apart, read once, and come back
in order when their limit frees (a claim never rereads a held-back backlog)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.flow import FlowLimits
from runner.store.job_rows import Ack
from runner.store.redis import RedisStore
from tests.conformance.helpers import OWNER, T0, job
from tests.redis_support import fresh_store

LIMITS = FlowLimits(task_concurrency={"report": 1})


@pytest.fixture
def store() -> Iterator[RedisStore]:
    with fresh_store() as opened:
        yield opened


def claim(store: RedisStore, now: float = T0, want: int = 5,
          limits: FlowLimits | None = LIMITS) -> list[str]:
    return [c.id for c in store.claim(now=now, owner=OWNER, lease_seconds=30, want=want,
                                      limits=limits).claimed]


def ready(store: RedisStore) -> int:
    return int(store.r.zcard(store.k("ready", "default")))


def test_a_held_back_backlog_leaves_the_ready_set_and_is_not_read_again(store):
    backlog = [job(T0 - 50 + n, task="report") for n in range(40)]
    store.enqueue([*backlog, job(T0, task="mail")], now=T0)
    assert claim(store, want=1) == [backlog[0].id]
    assert len(claim(store)) == 1  # the mail job; the other report jobs are parked
    assert ready(store) == 0
    assert claim(store) == [] and ready(store) == 0
    assert store.count_jobs() == 41  # parked jobs still wait, counted as waiting


def test_parked_jobs_come_back_in_order_as_the_limit_frees(store):
    backlog = [job(T0 - 50 + n, task="report") for n in range(12)]
    store.enqueue(backlog, now=T0)
    order = []
    for step in range(12):
        [got] = claim(store, now=T0 + step)
        order.append(got)
        assert claim(store, now=T0 + step) == []
        store.complete([Ack(got, 1, T0 + step, T0 + step + 0.5)])
    assert order == [j.id for j in backlog]


def test_a_parked_job_cancelled_by_hand_does_not_come_back(store):
    first, parked = job(T0 - 2, task="report"), job(T0 - 1, task="report")
    store.enqueue([first, parked], now=T0)
    assert claim(store) == [first.id]
    assert claim(store) == []  # parks the second one
    assert store.cancel_jobs([parked.id], now=T0) == 1
    store.complete([Ack(first.id, 1, T0, T0 + 1)])
    assert claim(store, now=T0 + 1) == []
    assert not store.r.exists(store.k("parked"))


def test_jobs_of_a_paused_task_come_back_when_it_resumes_even_without_limits(store):
    held = [job(T0 - 10 + n, task="report") for n in range(3)]
    store.enqueue(held, now=T0)
    store.set_pause("task", "report", True, now=T0)
    assert claim(store, limits=None) == [] and ready(store) == 0
    store.set_pause("task", "report", False, now=T0 + 1)
    assert claim(store, now=T0 + 1, limits=None) == [j.id for j in held]
