"""The dashboard's Failures screen, read at every refresh, costs the same however many
dead jobs history holds: it groups the newest failed jobs up to a cap (SQLite's VM
steps, PostgreSQL's rows read, both the same for the same data every run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.readmodel import failures
from runner.store.backend import Store
from runner.store.postgres import PostgresStore
from runner.store.sqlite import SqliteStore
from tests.conformance.conftest import BACKENDS
from tests.conformance.helpers import T0
from tests.unit.test_summary_cost import _rows_read

CAP = 100


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setattr(failures, "FAILURE_CAP", CAP, raising=False)
    with BACKENDS[request.param](tmp_path) as (opened, _):
        yield opened


def add_dead(store: Store, count: int, start: int = 0, *, message: str = "") -> None:
    """``count`` dead jobs, written in order, which died days ago (of two errors, unless
    ``message`` names one)."""
    old = T0 - 5 * 86_400
    rows = [(f"dead-{n:06d}", old, old + n * 0.001,
             message or ("refused", "timed out")[n % 2])
            for n in range(start, start + count)]
    columns = ("INSERT INTO runner_job (id, task, queue, state, data, run_at, created_at, "
               "finished_at, last_failed_at, error_type, error_message) VALUES ")
    if isinstance(store, SqliteStore):
        store.db.write(lambda c: c.executemany(
            columns + "(?, 't', 'q', 'dead', x'00', ?, ?, ?, ?, 'ValueError', ?)",
            [(i, r, c, c, c, m) for i, r, c, m in rows]))
    else:
        assert isinstance(store, PostgresStore)
        store.db.write(lambda c: c.cursor().executemany(
            columns + "(%s, 't', 'q', 'dead', '\\x00', %s, %s, %s, %s, 'ValueError', %s)",
            [(i, r, c, c, c, m) for i, r, c, m in rows]))
        store.db.write(lambda c: c.execute("ANALYZE runner_job"))


def refresh(store: Store) -> list[failures.FailureGroup]:
    """What the screen reads at a refresh: the signature, then the groups."""
    failures.failure_signature(store)
    return failures.failure_groups(store)


def cost_of_refresh(store: Store) -> int:
    """SQLite: VM steps; PostgreSQL: rows of ``runner_job`` its statements read."""
    if isinstance(store, SqliteStore):
        steps = [0]

        def tick() -> int:
            steps[0] += 10
            return 0

        conn = store.db.connection()
        conn.set_progress_handler(tick, 10)
        try:
            refresh(store)
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
        refresh(store)
    finally:
        del store.db.query
    return sum(_rows_read(query(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)[0][0][0]
                          ["Plan"]) for sql, params in statements)


def test_the_failures_screen_reads_no_further_than_its_cap_of_failed_jobs(store):
    add_dead(store, 2 * CAP)
    few = cost_of_refresh(store)
    add_dead(store, 20 * CAP, start=2 * CAP)
    assert cost_of_refresh(store) <= few * 1.2, few


def test_capped_groups_count_the_newest_failed_jobs(store):
    # Given more dead jobs than the cap, the newest of them failing in a new way
    add_dead(store, 2 * CAP, message="refused")
    add_dead(store, CAP, start=2 * CAP, message="timed out")
    # When the screen reads them, Then it groups the newest, and knows there are more
    assert [(g.message, g.count, g.dead) for g in refresh(store)] == [("timed out", CAP, CAP)]
    assert failures.capped(failures.failure_signature(store))
