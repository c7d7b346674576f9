"""What a Failures group action (``r``/``d`` on a group) costs with a very large group.

    .venv/bin/python bench/failure_group_action.py [--dead 1000000] [--backend sqlite|postgres]

Seeds dead jobs of four errors (a quarter of them each; SQLite: a file in a
temporary directory; PostgreSQL: a schema of its own on ``RUNNER_TEST_POSTGRES``,
dropped after), then plans a retry of one whole group (the exact count the user
types) and runs it, in the transactions of ``runner.control.BULK_CHUNK`` jobs the
dashboard uses. Reports the plan's time, the run's, and the longest single write
transaction (how long a worker may wait for the write lock meanwhile).

Figures of one run (2 shared cores), 1,000,000 dead jobs, a group of 250,000:
SQLite plan 0.11 s, retry 9.0 s in 501 transactions (median 14.7 ms, longest
95 ms); PostgreSQL plan 0.35 s, retry 40.2 s in 501 transactions (median 70 ms,
longest 1.1 s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from failures_cost import ERRORS, _schema, seed_postgres, seed_sqlite  # noqa: E402

from runner import control  # noqa: E402
from runner.store.sqlite import SqliteStore  # noqa: E402


def act(store, db, name: str, dead: int) -> None:
    """Plan and run a retry of the group of ``ERRORS[1]``, timing each write."""
    writes: list[float] = []
    write = db.write

    def timed(fn, *args, **kwargs):
        started = time.perf_counter()
        try:
            return write(fn, *args, **kwargs)
        finally:
            writes.append(time.perf_counter() - started)

    db.write = timed
    started = time.perf_counter()
    plan = control.plan_failure_group(store, "retry", "ValueError", [ERRORS[1]])
    planned = time.perf_counter()
    done = control.run_failure_group(store, plan, now=float(dead + 1))
    ended = time.perf_counter()
    del db.write
    assert done == plan.count == dead // 4, (done, plan.count)
    print(f"{name}: {dead:,} dead, a group of {plan.count:,}: plan {planned - started:.2f} s, "
          f"retry {ended - planned:.1f} s in {len(writes):,} transactions, longest "
          f"{max(writes) * 1000:.0f} ms, median {sorted(writes)[len(writes) // 2] * 1000:.1f} ms")


def sqlite_run(dead: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db = seed_sqlite(Path(directory) / "jobs.db", dead, "NORMAL")
        act(SqliteStore(db), db, "sqlite", dead)
        db.close()


def postgres_run(dead: int) -> None:
    from runner.store.postgres import PgDatabase, PostgresStore
    from runner.store.postgres.schema import prepare

    with _schema() as url:
        db = PgDatabase(url)
        prepare(db)
        seed_postgres(db, dead)
        act(PostgresStore(db), db, "postgres", dead)
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dead", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    (sqlite_run if args.backend == "sqlite" else postgres_run)(args.dead)


if __name__ == "__main__":
    main()
