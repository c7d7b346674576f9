"""The statements that read waiting jobs go through an index, and an enqueue writes
only the indexes of waiting jobs (schema 4)."""

from __future__ import annotations

import re
import sqlite3

from runner.config import DatabaseSection
from runner.store.job_rows import NewJob, QueueBound
from runner.store.rows import JobFilter
from runner.store.sqlite import SqliteStore, dashboard_reads, queries, stats
from runner.store.sqlite.backlog import OLDEST_WAITING, OLDEST_WAITING_AFTER
from runner.store.sqlite.db import Database
from runner.store.sqlite.schema import prepare_database
from runner.store.sqlite.transitions import claim, enqueue

T0 = 1_700_000_000.0


def _store(tmp_path) -> SqliteStore:
    db = Database(tmp_path / "jobs.db", DatabaseSection())
    prepare_database(db)
    store = SqliteStore(db)
    store.enqueue([NewJob(f"j{n:05d}", f"t{n % 3}", f"q{n % 2}", n % 3, b"x", None, 1,
                          T0 + (n % 5 - 2) * 60) for n in range(3000)], now=T0)
    return store


def _traced(db: Database, work) -> list[str]:  # noqa: ANN001
    statements: list[str] = []

    def run(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(statements.append)
        try:
            work(conn)
        finally:
            conn.set_trace_callback(None)

    db.write(run)
    return [s for s in statements if "runner_job " in s and not s.startswith("INSERT")]


def _plan(db: Database, sql: str) -> list[str]:
    return [row[3] for row in db.connection().execute(f"EXPLAIN QUERY PLAN {sql}")]


def _indexed(plan: list[str]) -> bool:
    scans = [s for s in plan if re.fullmatch(r"SCAN runner_job", s)]
    return not scans and any(re.search(r"USING (COVERING )?INDEX|USING INTEGER PRIMARY KEY", s)
                             for s in plan)


def test_the_claim_and_a_drop_at_a_full_queue_read_through_indexes(tmp_path):
    store = _store(tmp_path)

    def work(conn: sqlite3.Connection) -> None:
        for queues in ((), ("q1",)):
            claim(conn, now=T0, owner="o", lease_seconds=60, want=8, busy=False,
                  queues=queues)
        enqueue(conn, [NewJob("extra", "t0", "q0", 0, b"x", None, 1, T0)], T0,
                bounds={"q0": QueueBound(100, "drop_oldest")})
        claim(conn, now=T0 - 10_000, owner="o", lease_seconds=60, want=8, busy=False)

    reads = _traced(store.db, work)
    assert any("INDEXED BY runner_job_claim" in s for s in reads)
    assert any("ORDER BY run_at, rowid" in s for s in reads)  # drop_oldest's pick
    for sql in reads:
        if sql.startswith(("SELECT", "WITH", "UPDATE")):
            assert _indexed(_plan(store.db, sql)), (sql, _plan(store.db, sql))


def test_backlog_reads_seek_by_level_of_priority(tmp_path):
    store = _store(tmp_path)
    for sql in (OLDEST_WAITING, OLDEST_WAITING_AFTER):
        plan = _plan(store.db, sql.replace("?1", "'q0'").replace("?2", str(T0)))
        assert _indexed(plan)
        assert all("TEMP B-TREE" not in s for s in plan)
    rows = store.db.query("SELECT min(run_at) FROM runner_job WHERE queue = 'q0' AND "
                          "state IN ('available','scheduled','retrying')")
    assert store.db.query(OLDEST_WAITING, ("q0",)) == rows
    assert stats.queue_oldest(store.db, T0)[0][1] == rows[0][0]


def test_counts_and_pages_by_state_agree_with_a_full_count(tmp_path):
    store = _store(tmp_path)
    claim_all = store.claim(now=T0, owner="o", lease_seconds=60, want=50).claimed
    assert claim_all
    full = dict(store.db.query("SELECT state, count(*) FROM runner_job GROUP BY state"))
    counts = queries.counts_by_state(store.db)
    assert {s: n for s, n in counts.items() if n} == full
    summary = dashboard_reads.summary(store.db, T0)
    assert (summary.waiting, summary.scheduled) == (full["available"], full["scheduled"])
    for state, n in full.items():
        page = dashboard_reads.job_page(store.db, JobFilter(state=state), limit=5000).jobs
        assert len(page) == n and {j.state for j in page} == {state}
        assert queries.count_jobs(store.db, JobFilter(state=state)) == n
    tasked = dashboard_reads.job_page(store.db, JobFilter(task="t1"), limit=5000).jobs
    assert len(tasked) == 1000 and [j.created_at for j in tasked] == sorted(
        (j.created_at for j in tasked), reverse=True)


def test_an_enqueue_writes_no_state_or_task_index(tmp_path):
    store = _store(tmp_path)  # 3000 waiting jobs, 1200 of them due later
    entries = dict(store.db.connection().execute(
        "SELECT name, sum(ncell) FROM dbstat WHERE name LIKE 'runner_job_%' GROUP BY name"))
    assert entries["runner_job_claim"] == entries["runner_job_queue_claim"] == 3000
    assert entries["runner_job_future"] == 1200
    assert entries["runner_job_state_created"] == entries["runner_job_task"] == 0


def test_a_page_of_one_task_pages_by_row_number_without_sorting(tmp_path):
    # The task index leaves waiting jobs out, so a task page (any state but one finished
    # state) must page in insertion order: a page by created_at would sort every row.
    store = _store(tmp_path)
    statements: list[str] = []
    conn = store.db.connection()
    conn.set_trace_callback(statements.append)
    try:
        page = dashboard_reads.job_page(store.db, JobFilter(task="t1"), limit=50)
    finally:
        conn.set_trace_callback(None)
    assert len(page.jobs) == 50
    read = next(s for s in statements if "FROM runner_job" in s)
    plan = _plan(store.db, read)
    assert all("TEMP B-TREE" not in s for s in plan), plan
