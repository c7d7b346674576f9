"""The dashboard's summary strip, read at every refresh, costs the same however many dead
jobs history holds: it counts them up to a limit (SQLite's VM steps, PostgreSQL's rows
read, both the same for the same data every run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.store.backend import Store
from runner.store.postgres import PostgresStore
from runner.store.sqlite import SqliteStore
from tests.conformance.conftest import BACKENDS
from tests.conformance.helpers import T0

LIMIT = 100


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with BACKENDS[request.param](tmp_path) as (opened, _):
        yield opened


def add_dead(store: Store, count: int, start: int = 0) -> None:
    """``count`` dead jobs that died days ago (history, outside every window of rates)."""
    old = T0 - 5 * 86_400
    rows = [(f"dead-{n:06d}", old, old + n * 0.001) for n in range(start, start + count)]
    if isinstance(store, SqliteStore):
        store.db.write(lambda c: c.executemany(
            "INSERT INTO runner_job (id, task, queue, state, data, run_at, created_at, "
            "finished_at) VALUES (?, 't', 'q', 'dead', x'00', ?, ?, ?)",
            [(i, r, c, c) for i, r, c in rows]))
    else:
        assert isinstance(store, PostgresStore)
        store.db.write(lambda c: c.cursor().executemany(
            "INSERT INTO runner_job (id, task, queue, state, data, run_at, created_at, "
            "finished_at) VALUES (%s, 't', 'q', 'dead', '\\x00', %s, %s, %s)",
            [(i, r, c, c) for i, r, c in rows]))
        store.db.write(lambda c: c.execute("ANALYZE runner_job"))


def cost_of_summary(store: Store) -> int:
    """SQLite: VM steps; PostgreSQL: rows of ``runner_job`` its statements read."""
    if isinstance(store, SqliteStore):
        steps = [0]

        def tick() -> int:
            steps[0] += 10
            return 0

        conn = store.db.connection()
        conn.set_progress_handler(tick, 10)
        try:
            assert store.summary(T0, dead_limit=LIMIT).dead_capped
        finally:
            conn.set_progress_handler(None, 10)
        return steps[0]
    assert isinstance(store, PostgresStore)
    statements: list[tuple[str, object]] = []
    query = store.db.query

    def recording(sql: str, params: tuple | list = ()) -> list[tuple]:
        statements.append((sql, params))
        return query(sql, params)

    store.db.query = recording  # type: ignore[method-assign]
    try:
        assert store.summary(T0, dead_limit=LIMIT).dead_capped
    finally:
        del store.db.query
    return sum(_rows_read(query(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)[0][0][0]
                          ["Plan"]) for sql, params in statements)


def _rows_read(node: dict) -> int:
    own = 0
    if node.get("Relation Name") == "runner_job" or "runner_job" in node.get("Index Name", ""):
        own = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
    return own + sum(_rows_read(child) for child in node.get("Plans", []))


def test_the_summary_reads_no_further_than_its_limit_of_dead_jobs(store):
    add_dead(store, 2 * LIMIT)
    few = cost_of_summary(store)
    add_dead(store, 20 * LIMIT, start=2 * LIMIT)
    assert cost_of_summary(store) <= few * 1.2, few
