"""What one claim costs beside a backlog it cannot take: SQLite steps and ms, PostgreSQL ms.

    .venv/bin/python bench/claim_scale.py [--root CHECKOUT] [--backlog 20000]
        [--claims 40] [--backends sqlite,postgres]

Two backlogs a claim must not pay for, each measured with and without it:

* ``held``: one key's ``--backlog`` waiting jobs ahead of other keys' jobs, under a
  limit of one running job per key (``key_concurrency``), its first job running.
  Each claim takes 4 jobs of other keys (and their previous 4 are completed).
* ``later``: ``--backlog`` jobs due tomorrow at a higher priority than the jobs due
  now, claimed as a trickle comes in: 2 jobs due per claim of 8 (an idle worker
  finds fewer than it wants), with no limits (``plain``) and under a per-key
  limit that binds nothing (``limits``).

A first claim after the backlog is written is left out (a store may set held-back
jobs aside then, once); the figures are per claim over ``--claims`` claims:
SQLite virtual machine steps (repeatable, whatever the load of the machine),
the median SQLite and PostgreSQL time. Only the store API every release since
schema 5 has (``SqliteStore``/``PostgresStore``: ``enqueue``, ``claim``,
``complete``), so ``--root`` may name an older checkout to compare with.
``RUNNER_TEST_POSTGRES`` names the PostgreSQL database (default: the ``test``
database on 127.0.0.1:5432); each run uses a schema of its own, dropped after.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

T0 = 1_700_000_000.0
OWNER = "bench-host:1:1"
PG_URL = os.environ.get("RUNNER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_ids = itertools.count(1)


def _job(run_at: float, *, task: str = "sync", key: str | None = None, priority: int = 0):
    from runner.store.job_rows import NewJob

    return NewJob(id=f"job-{next(_ids):08d}", task=task, queue="default", priority=priority,
                  data=b"payload", args="()", max_attempts=1, run_at=run_at,
                  concurrency_key=key)


def _enqueue(store, jobs: list, now: float) -> None:
    for start in range(0, len(jobs), 1000):
        store.enqueue(jobs[start:start + 1000], now=now)


class _Steps:
    """SQLite VM steps while :attr:`on` (a progress handler every 10 steps)."""

    def __init__(self, conn) -> None:
        self.count, self.on = 0, False
        conn.set_progress_handler(self._tick, 10)

    def _tick(self) -> int:
        if self.on:
            self.count += 10
        return 0


def _held(store, backlog: int, claims: int, measure: Callable) -> None:
    from runner.flow import FlowLimits
    from runner.store.job_rows import Ack

    limits = FlowLimits(key_concurrency={"sync": 1})
    big = [_job(T0 - 50_000 + n * 0.01, key="big") for n in range(max(1, backlog))]
    _enqueue(store, big, T0)
    _enqueue(store, [_job(T0 - 10 + n * 0.001, key=f"user-{n}")
                     for n in range(4 * (claims + 2))], T0)
    first = store.claim(now=T0, owner=OWNER, lease_seconds=300, want=1, limits=limits)
    assert [c.id for c in first.claimed] == [big[0].id], "the key's first job runs"
    taken = store.claim(now=T0, owner=OWNER, lease_seconds=300, want=4, limits=limits).claimed
    for _ in range(claims):
        store.complete([Ack(c.id, c.attempt, T0, T0) for c in taken])
        taken = measure(lambda: store.claim(now=T0, owner=OWNER, lease_seconds=300, want=4,
                                            limits=limits).claimed)
        assert len(taken) == 4, "each claim takes four jobs of other keys"


def _later(limited: bool) -> Callable:
    def run(store, backlog: int, claims: int, measure: Callable) -> None:
        from runner.flow import FlowLimits
        from runner.store.job_rows import Ack

        limits = FlowLimits(key_concurrency={"other": 1}) if limited else None
        _enqueue(store, [_job(T0 + 86_400 + n * 0.01, priority=10)
                         for n in range(backlog)], T0)
        def claim() -> list:
            return store.claim(now=T0, owner=OWNER, lease_seconds=300, want=8,
                               limits=limits).claimed

        taken = []
        for n in range(claims + 1):
            store.complete([Ack(c.id, c.attempt, T0, T0) for c in taken])
            store.enqueue([_job(T0 - 1, task="trickle") for _ in range(2)], now=T0)
            taken = claim() if n == 0 else measure(claim)
            assert len(taken) == 2, "each claim takes the two jobs due"
    return run


SCENARIOS: dict[str, Callable] = {"held": _held, "later/plain": _later(False),
                                  "later/limits": _later(True)}


@contextmanager
def _sqlite_store() -> Iterator[tuple[object, object]]:
    from runner.config import DatabaseSection
    from runner.store.sqlite import SqliteStore
    from runner.store.sqlite.db import Database
    from runner.store.sqlite.schema import prepare_database

    with tempfile.TemporaryDirectory() as directory:
        db = Database(Path(directory) / "jobs.db", DatabaseSection(synchronous="NORMAL"))
        prepare_database(db)
        yield SqliteStore(db), db.connection()


@contextmanager
def _postgres_store() -> Iterator[tuple[object, None]]:
    import psycopg

    from runner.store.postgres import PgDatabase, PostgresStore
    from runner.store.postgres.schema import prepare

    schema = f"bench_claim_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    joiner = "&" if "?" in PG_URL else "?"
    db = PgDatabase(f"{PG_URL}{joiner}options=-csearch_path%3D{schema}", pool_size=2)
    try:
        prepare(db)
        yield PostgresStore(db), None
    finally:
        db.close()
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def measure(backend: str, scenario: str, backlog: int, claims: int) -> tuple[float | None, float]:
    """(SQLite steps per claim or None, median ms per claim) of one scenario."""
    opened = _sqlite_store() if backend == "sqlite" else _postgres_store()
    times: list[float] = []
    with opened as (store, conn):
        steps = _Steps(conn) if conn is not None else None

        def timed(claim: Callable) -> list:
            if steps is not None:
                steps.on = True
            start = time.perf_counter()
            try:
                return claim()
            finally:
                times.append(time.perf_counter() - start)
                if steps is not None:
                    steps.on = False

        SCENARIOS[scenario](store, backlog, claims, timed)
    per_claim = None if steps is None else steps.count / len(times)
    return per_claim, statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--claims", type=int, default=40)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    import runner

    print(f"checkout {args.root} ({Path(runner.__file__).parent}); backlog {args.backlog:,}, "
          f"{args.claims} claims each")
    print(f"{'backend':9} {'scenario':13} {'backlog':>8} {'steps/claim':>12} {'ms/claim':>9}")
    for backend in args.backends.split(","):
        for scenario in SCENARIOS:
            for backlog in (0, args.backlog):
                steps, ms = measure(backend, scenario, backlog, args.claims)
                shown = "" if steps is None else f"{steps:,.0f}"
                print(f"{backend:9} {scenario:13} {backlog:>8,} {shown:>12} {ms:>9.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
