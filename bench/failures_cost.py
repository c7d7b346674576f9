"""What one refresh of the dashboard's Failures screen reads, with many dead jobs.

    .venv/bin/python bench/failures_cost.py [--dead 1000000] [--backend sqlite|postgres]

Seeds dead jobs of a few errors (SQLite: a file in a temporary directory;
PostgreSQL: a schema of its own on ``RUNNER_TEST_POSTGRES``, dropped after),
then reads what the screen reads at a refresh that found a change: the failure
signature, then the groups (``runner.readmodel.failures``). Counts SQLite VM
steps or the rows of ``runner_job`` PostgreSQL's plans read (figures the load of
the machine does not move) and times the refresh (best of five, warm cache).

Figures of one run (2 shared cores), 1,000,000 dead jobs of four errors. Before
the cap (every failed job grouped): SQLite 27,000,600 VM steps, 604 ms, and the
signature alone (a refresh that found no change) 65.8 ms; PostgreSQL 1,999,999
rows read, 670 ms, signature 64.2 ms. With the cap (the newest 10,000 grouped):
SQLite 711,000 steps, 16 ms, signature 0.3 ms; PostgreSQL 20,001 rows, 15 ms,
signature 1.7 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.config import DatabaseSection  # noqa: E402
from runner.readmodel import failures  # noqa: E402
from runner.store.sqlite import SqliteStore  # noqa: E402
from runner.store.sqlite.db import Database  # noqa: E402
from runner.store.sqlite.schema import prepare_database  # noqa: E402

ERRORS = ("connection refused", "timed out", "bad input", "quota exceeded")


def refresh(store) -> int:
    failures.failure_signature(store)
    return sum(g.count for g in failures.failure_groups(store))


def seed_sqlite(path: Path, dead: int, synchronous: str) -> Database:
    """A jobs file holding ``dead`` dead jobs, a quarter of each of ``ERRORS``."""
    db = Database(path, DatabaseSection(synchronous=synchronous))
    prepare_database(db)
    db.write(lambda c: c.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO runner_job (id, task, queue, state, data, run_at, created_at, "
        "finished_at, last_failed_at, error_type, error_message) SELECT 'dead-' || i, 't', "
        "'q', 'dead', x'00', i, i, i, i, 'ValueError', "
        f"CASE i % 4 {' '.join(f'WHEN {k} THEN {e!r}' for k, e in enumerate(ERRORS))} END "
        "FROM n", (dead,)))
    return db


def seed_postgres(db, dead: int) -> None:
    """``dead`` dead jobs in a prepared PostgreSQL schema, as :func:`seed_sqlite` writes."""
    cases = " ".join(f"WHEN {k} THEN '{e}'" for k, e in enumerate(ERRORS))
    db.write(lambda c: c.execute(
        "INSERT INTO runner_job (id, task, queue, state, data, run_at, created_at, "
        "finished_at, last_failed_at, error_type, error_message) SELECT 'dead-' || i, "
        "'t', 'q', 'dead', '\\x00', i, i, i, i, 'ValueError', "
        f"CASE i %% 4 {cases} END FROM generate_series(1, %s) i", (dead,)))
    db.write(lambda c: c.execute("VACUUM ANALYZE runner_job"), single=True)


def sqlite_run(dead: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        _sqlite_in(Path(directory), dead)


def _sqlite_in(directory: Path, dead: int) -> None:
    db = seed_sqlite(directory / "jobs.db", dead, "OFF")
    store = SqliteStore(db)
    conn = db.connection()
    steps = [0]

    def tick() -> int:
        steps[0] += 100
        return 0

    conn.set_progress_handler(tick, 100)
    grouped = refresh(store)
    conn.set_progress_handler(None, 100)
    best = min(_timed(store) for _ in range(5))
    print(f"sqlite: {dead:,} dead: {grouped:,} grouped, {steps[0]:,} VM steps, "
          f"{best * 1000:.0f} ms; {_signature_ms(store)}")
    db.close()


@contextmanager
def _schema() -> Iterator[str]:
    """A URL whose connections work in a new schema of ``RUNNER_TEST_POSTGRES``, dropped after."""
    import psycopg

    base = os.environ.get("RUNNER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"bench_failures_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def _rows_read(node: dict) -> int:
    """Rows of ``runner_job`` (table or index) a plan node and its children read."""
    own = 0
    if node.get("Relation Name") == "runner_job" or "runner_job" in node.get("Index Name", ""):
        own = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
    return own + sum(_rows_read(child) for child in node.get("Plans", []))


def postgres_run(dead: int) -> None:
    from runner.store.postgres import PgDatabase, PostgresStore
    from runner.store.postgres.schema import prepare

    with _schema() as url:
        db = PgDatabase(url)
        prepare(db)
        seed_postgres(db, dead)
        store = PostgresStore(db)
        statements = []
        query = db.query

        def recording(sql, params=()):
            statements.append((sql, params))
            return query(sql, params)

        db.query = recording
        grouped = refresh(store)
        del db.query
        rows = sum(_rows_read(query(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)[0][0][0]
                              ["Plan"]) for sql, params in statements)
        best = min(_timed(store) for _ in range(5))
        print(f"postgres: {dead:,} dead: {grouped:,} grouped, {rows:,} rows read, "
              f"{best * 1000:.0f} ms; {_signature_ms(store)}")
        db.close()


def _timed(store, read=refresh) -> float:
    started = time.perf_counter()
    read(store)
    return time.perf_counter() - started


def _signature_ms(store) -> str:
    """A refresh that found no change reads the signature alone."""
    best = min(_timed(store, failures.failure_signature) for _ in range(5))
    return f"signature alone {best * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dead", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), action="append")
    args = parser.parse_args()
    for backend in args.backend or ("sqlite", "postgres"):
        (sqlite_run if backend == "sqlite" else postgres_run)(args.dead)


if __name__ == "__main__":
    main()
