"""The bookkeeping each backend keeps per queue name: none is left of queues with no job
once upkeep ran, and a claim under shares writes none for queues with nothing due."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.flow import FlowLimits
from runner.store.backend import Store
from runner.store.job_rows import Ack
from runner.store.postgres import PostgresStore
from runner.store.redis import RedisStore
from runner.store.redis.codec import US
from runner.store.sqlite import SqliteStore
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
        rows = store.db.query("SELECT queue FROM runner_queue UNION "
                              "SELECT substr(key, 6) FROM runner_flow WHERE key LIKE 'turn:%'")
    else:
        assert isinstance(store, RedisStore)
        turns = [f.decode()[5:] for f in store.r.hkeys(store.k("flow"))
                 if f.startswith(b"turn:")]
        counts = [f.decode().split(US)[0] for f in store.r.hkeys(store.k("qstate"))]
        keys = [k.decode().rsplit(":", 1)[-1]
                for k in store.r.scan_iter(match=store.k("*:tenant-*"))]
        rows = [(q,) for q in [*turns, *counts, *keys]]
    return {q for (q,) in rows}


def drain(store: Store) -> None:
    while claimed := store.claim(now=T0, owner=OWNER, lease_seconds=30, want=50,
                                 limits=SHARES).claimed:
        store.complete([Ack(c.id, 1, T0, T0) for c in claimed])


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
