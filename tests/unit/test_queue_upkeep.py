"""The bookkeeping each backend keeps per queue name: none is left of queues with no job
once upkeep ran, and a claim under shares writes none for queues with nothing due."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from runner.flow import FlowLimits
from runner.service_sections import RetentionSection
from runner.store.backend import Store
from runner.store.job_rows import Ack
from runner.store.postgres import PostgresStore
from runner.store.postgres.transitions.enqueue import enqueue
from runner.store.redis import RedisStore
from runner.store.redis.codec import US
from runner.store.sqlite import SqliteStore
from runner.store.states import FINAL
from tests.conformance.conftest import BACKENDS
from tests.conformance.helpers import OWNER, T0, job

SHARES = FlowLimits(weights={"configured": 2})


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with BACKENDS[request.param](tmp_path) as (opened, _):
        yield opened


def kept(store: Store) -> set[str]:
    """The queue names the backend keeps a waiting count or a share turn for."""
    if isinstance(store, SqliteStore):
        rows = store.db.query("SELECT queue FROM runner_job_total WHERE task = '' UNION "
                              "SELECT substr(key, 6) FROM runner_flow WHERE key LIKE 'turn:%'")
    elif isinstance(store, PostgresStore):
        rows = store.db.query("SELECT queue FROM runner_queue UNION SELECT substr(key, 6) "
                              "FROM runner_flow WHERE left(key, 5) = 'turn:'")
    else:
        assert isinstance(store, RedisStore)
        turns = [f.decode()[5:] for f in store.r.hkeys(store.k("flow"))
                 if f.startswith(b"turn:")]
        # Finished jobs are counted in ``qstate`` too, and indexed per queue: history,
        # which goes with the jobs.
        counts = [q for q, _, state in (f.decode().partition(US)
                                        for f in store.r.hkeys(store.k("qstate")))
                  if state not in FINAL]
        keys = [k.decode().rsplit(":", 1)[-1] for k in store.r.scan_iter(
            match=store.k("*:tenant-*")) if not k.startswith(store.k("qjobs:").encode())]
        rows = [(q,) for q in [*turns, *counts, *keys]]
    return {q for (q,) in rows}


def drain(store: Store) -> None:
    while claimed := store.claim(now=T0, owner=OWNER, lease_seconds=30, want=50,
                                 limits=SHARES).claimed:
        store.complete([Ack(c.id, 1, T0, T0) for c in claimed])


def test_upkeep_leaves_nothing_of_queues_used_once(store):
    tenants = [f"tenant-{n}" for n in range(60)]
    store.enqueue([job(queue=q) for q in [*tenants, "configured"]], now=T0)
    drain(store)
    store.enqueue([job(queue="waiting"), job(queue="running")], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1, queues=("running",))
    idle = kept(store) & set(tenants)
    assert idle  # on Redis, the tenants whose turn is not 0 (their counts went at 0)
    report = store.prune_retention(RetentionSection(vacuum=False), now=T0,
                                   keep_queues=["configured"])
    assert report.forgotten_queues == len(idle)
    assert not kept(store) & set(tenants)
    assert {"waiting", "running"} <= kept(store)


def test_a_shared_claim_writes_no_turn_for_queues_with_nothing_due(store):
    # Queues holding only jobs due tomorrow take no turn; their counters were rewritten
    # by every claim all the same (2,000 of them: ~85,000 SQLite steps a claim).
    store.enqueue([job(T0 + 86_400, queue=f"tenant-{n}") for n in range(200)]
                  + [job(queue=q) for q in ("configured", "other") for _ in range(5)],
                  now=T0)
    for _ in range(3):
        assert store.claim(now=T0, owner=OWNER, lease_seconds=30, want=2,
                           limits=SHARES).claimed
    if isinstance(store, RedisStore):
        written = {f.decode()[5:] for f in store.r.hkeys(store.k("flow"))}
    else:
        written = {k[5:] for (k,) in store.db.query(  # type: ignore[attr-defined]
            "SELECT key FROM runner_flow")}
    assert written <= {"configured", "other"}


def test_postgres_upkeep_beside_an_open_enqueue_keeps_the_count_exact(tmp_path):
    # A producer's transaction has added a job to an idle queue's count (its own shard's
    # row, which holds the queue's first job) and not yet committed when upkeep runs:
    # upkeep neither waits for it nor loses a job from the count.
    with BACKENDS["postgres"](tmp_path) as (store, _):
        assert isinstance(store, PostgresStore)
        with psycopg.connect(store.db.url) as producer:
            enqueue(producer, [job(queue="tenant")], T0)
            producer.commit()
            drain(store)
            enqueue(producer, [job(queue="tenant")], T0)
            upkeep = threading.Thread(target=store.prune_retention,
                                      args=(RetentionSection(vacuum=False),),
                                      kwargs={"now": T0})
            upkeep.start()
            upkeep.join(10)
            assert not upkeep.is_alive()
            producer.commit()
        assert store.db.query("SELECT sum(waiting) FROM runner_queue "
                              "WHERE queue = 'tenant'") == [(1,)]
        drain(store)
        assert store.prune_retention(RetentionSection(vacuum=False),
                                     now=T0).forgotten_queues == 1


def test_upkeep_keeps_the_turn_of_a_queue_whose_jobs_are_all_held_back(store):
    # Given a queue under shares (beside another) whose only jobs are one key's, held
    # back (parked where the backend parks) behind its first, which has just completed
    limits = FlowLimits(weights={"tenant": 2}, key_concurrency={"sync": 1})
    big = [job(T0 - 100 + n, task="sync", concurrency_key="big", queue="tenant")
           for n in range(5)]
    store.enqueue([*big, job(T0 - 1, queue="other")], now=T0 - 100)
    for _ in range(3):
        claimed = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=5,
                              limits=limits).claimed
        store.complete([Ack(c.id, 1, T0, T0) for c in claimed])
        if claimed:
            break
    turn = ("SELECT count(*) FROM runner_flow WHERE key = 'turn:tenant'",)
    if isinstance(store, SqliteStore):  # its waiting count is kept in any case
        assert store.db.query(*turn) == [(1,)]
    # When upkeep runs, Then the queue is not idle: its share turn stays
    store.prune_retention(RetentionSection(vacuum=False), now=T0, keep_queues=())
    assert "tenant" in kept(store)
    if isinstance(store, SqliteStore):
        assert store.db.query(*turn) == [(1,)]
