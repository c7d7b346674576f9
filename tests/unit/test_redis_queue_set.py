"""Redis: a claim visits the queues that hold waiting jobs, never every queue ever used."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.store.job_rows import Ack
from runner.store.redis import RedisStore
from tests.conformance.helpers import OWNER, T0, job
from tests.redis_support import commands_run, fresh_store, own_store


@pytest.fixture
def store() -> Iterator[RedisStore]:
    with fresh_store() as opened:
        yield opened


def known(store: RedisStore) -> set[str]:
    return {q.decode() for q in store.r.smembers(store.k("queues"))}


def drain(store: RedisStore, now: float = T0) -> None:
    while claimed := store.claim(now=now, owner=OWNER, lease_seconds=30, want=50).claimed:
        store.complete([Ack(c.id, 1, now, now) for c in claimed])


def test_a_queue_leaves_the_claims_view_with_its_last_waiting_job(store):
    later = job(T0 + 60, queue="later")
    store.enqueue([job(queue=f"tenant-{n}") for n in range(30)] + [later], now=T0)
    drain(store)
    assert known(store) == {"later"}  # its job still waits (due later)
    store.cancel_jobs([later.id], now=T0)
    assert known(store) == set()


def test_a_claim_forgets_queues_emptied_before_the_set_was_kept_tidy(store):
    store.r.sadd(store.k("queues"), *[f"old-{n}" for n in range(20)])
    store.enqueue([job(queue="mail")], now=T0)
    assert len(store.claim(now=T0, owner=OWNER, lease_seconds=30, want=5).claimed) == 1
    assert known(store) == set()


def test_claims_cost_the_same_after_many_queues_were_used_and_emptied(tmp_path):
    with own_store(tmp_path / "redis") as store:
        def cost_of_claims() -> int:
            store.enqueue([job(queue="mail") for _ in range(20)], now=T0)
            before = commands_run(store)
            drain(store)
            return commands_run(store) - before

        alone = cost_of_claims()
        store.enqueue([job(queue=f"tenant-{n}") for n in range(200)], now=T0)
        drain(store)
        assert cost_of_claims() <= alone + 5
