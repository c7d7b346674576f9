"""The flow-control claim reads through indexes: no statement scans the jobs table."""

from __future__ import annotations

import re
import sqlite3

from runner.config import DatabaseSection
from runner.flow import FlowLimits, Rate
from runner.store.job_rows import NewJob
from runner.store.sqlite import SqliteStore
from runner.store.sqlite.db import Database
from runner.store.sqlite.schema import prepare_database
from runner.store.sqlite.transitions import claim

T0 = 1_700_000_000.0

LIMITS = [
    FlowLimits(aging=60, weights={"q0": 4, "q1": 3, "q2": 2, "q3": 1},
               queue_concurrency={"q1": 2}, queue_rates={"q2": Rate(5, 1)},
               task_concurrency={"t1": 1}, key_concurrency={"t2": 1},
               task_rates={"t3": Rate(1, 60)}),
    FlowLimits(aging=60, queue_concurrency={"q1": 2}, task_concurrency={"t1": 1}),
]


def _plans(tmp_path, limits: FlowLimits) -> list[tuple[str, list[str]]]:
    db = Database(tmp_path / f"jobs-{id(limits)}.db", DatabaseSection())
    prepare_database(db)
    store = SqliteStore(db)
    store.enqueue([NewJob(f"j{n:05d}", f"t{n % 4}", f"q{n % 4}", n % 3, b"x", None, 1,
                          T0 - 5000 + n, concurrency_key=f"u{n % 7}") for n in range(5000)],
                  now=T0)
    statements: list[str] = []

    def traced(conn: sqlite3.Connection):
        conn.set_trace_callback(statements.append)
        try:
            for _ in range(3):
                claim(conn, now=T0, owner="o", lease_seconds=60, want=16, busy=False,
                      limits=limits)
        finally:
            conn.set_trace_callback(None)

    db.write(traced)
    conn = db.connection()
    reads = [s for s in statements if s.lstrip().startswith(("SELECT", "WITH"))
             and "runner_job " in s]
    assert reads, statements
    return [(s, [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {s}")]) for s in reads]


def test_every_read_of_the_flow_claim_goes_through_an_index(tmp_path):
    for limits in LIMITS:
        for statement, plan in _plans(tmp_path, limits):
            # A bare scan reads every row; a sort reads every candidate before the first.
            bad = [step for step in plan if re.fullmatch(r"SCAN runner_job", step)
                   or "TEMP B-TREE FOR ORDER BY" in step]
            assert not bad, (statement, plan)
            assert any("USING INDEX" in step for step in plan), (statement, plan)
