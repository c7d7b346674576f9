"""The schema: tables from the peewee models, a recorded version, forward migrations, refusal."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from runner.config import DatabaseSection
from runner.errors import (
    EX_CONFIG,
    EX_DATAERR,
    EX_TEMPFAIL,
    DatabaseCorrupt,
    SchemaTooNew,
    SchemaTooOld,
)
from runner.flow import FlowLimits
from runner.store.job_rows import Ack, NewJob
from runner.store.sqlite import SqliteStore, migrations, schema
from runner.store.sqlite.conditions import CLAIMABLE_WHERE, NOT_WAITING
from runner.store.sqlite.db import Database
from runner.store.sqlite.schema import prepare_database
from runner.store.states import JobState
from tests.conftest import wait_for
from tui.source import DataSource

OLD_DDL = Path(__file__).parent / "data" / "schema_v1.sql"
#: Version 1 as the last release left it: waiting jobs counted in a runner_queue table.
COUNTED_V1_DDL = Path(__file__).parent / "data" / "schema_v1_counted.sql"
T0 = 1_700_000_000.0


def _old_file(path: Path) -> Path:
    """A database as the previous release left it, with a job in it."""
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_DDL.read_text())
        conn.execute("INSERT INTO runner_job (id, task, state, data, run_at, created_at) "
                     "VALUES ('old-job', 'tests.jobs.add', 'available', x'00', ?, ?)", (T0, T0))
    conn.close()
    return path


def _open(path: Path) -> Database:
    schema._schema_ready.discard(str(path.absolute()))  # as a new process would
    db = Database(path, DatabaseSection())
    prepare_database(db)
    return db


def _columns(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as conn:
        tables = [n for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        # (name, declared type, default, pk) and NOT NULL, which a primary key now always is
        return {t: [(c[1], c[2], c[4], c[5], bool(c[3]) or bool(c[5]))
                    for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables}


def _indexes(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return {n: " ".join(s.split()) for n, s in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")}


def _contents(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return [*conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name"),
                *conn.execute("SELECT * FROM runner_meta ORDER BY key"),
                *conn.execute("SELECT id, state FROM runner_job ORDER BY id")]


def test_a_file_of_the_previous_release_opens_and_keeps_working(tmp_path):
    path = _old_file(tmp_path / "old.db")
    store = SqliteStore(_open(path))
    assert store.get_job("old-job").state == JobState.AVAILABLE
    store.enqueue([NewJob("new-job", "tests.jobs.add", "default", 0, b"x", None, 1, T0)], now=T0)
    claimed = store.claim(now=T0, owner="h:1:1", lease_seconds=30, want=10).claimed
    assert {c.id for c in claimed} == {"old-job", "new-job"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM runner_meta WHERE key='schema'").fetchone() == (
            str(migrations.SCHEMA_VERSION),)


def test_the_models_create_the_tables_and_indexes_the_previous_release_did(tmp_path):
    old = _old_file(tmp_path / "old.db")
    previous = (_columns(old), _indexes(old))
    new = tmp_path / "new.db"
    _open(new)
    # Added since: the waiting count per queue, lifetime counters, leases, flow control
    # (its state table, the per-key concurrency column and the per-queue claim index),
    # pauses, cancel requests and backpressure counters; schema 8: the intake.
    added = {"runner_queue", "runner_job_total", "runner_lease", "runner_flow", "runner_pause",
             "runner_cancel", "runner_queue_total", "runner_room", "runner_intake"}
    # Schema 5: each worker's clock offset from the store's. Schema 6: parked jobs.
    # Schema 7: when a revocation was written.
    new_columns = {("runner_job", "concurrency_key"), ("runner_worker", "clock_offset"),
                   ("runner_job", "parked"), ("runner_kv", "written_at")}
    columns = {t: [c for c in cols if (t, c[0]) not in new_columns]
               for t, cols in _columns(new).items() if t not in added}
    assert columns == previous[0]
    # Schema 2: unique keys are checked by the enqueue, not by a UNIQUE index.
    indexes = _indexes(new)
    assert "runner_job_unique" not in indexes and "runner_job_unique_key" in indexes
    # Schema 4: the state and task indexes leave waiting jobs out, the claim indexes
    # serve every read of the backlog (runner_job_queue_waiting is gone), and a
    # waiting state is tested by comparisons.
    changed = {"runner_job_unique_key", "runner_job_queue_claim", "runner_job_state_created",
               "runner_job_task", "runner_job_claim", "runner_job_suspect"}
    gone = {"runner_job_unique", "runner_job_queue_waiting"}
    changed.add("runner_job_future")  # scheduled and retrying jobs by state
    # Schema 6: jobs a concurrency limit parked leave the claim indexes for their own.
    changed |= {"runner_job_parked", "runner_job_parked_queue"}
    assert {n: s for n, s in indexes.items() if n not in changed} == {
        n: s for n, s in previous[1].items() if n not in gone | changed}
    assert not gone & set(indexes)
    assert indexes["runner_job_state_created"].endswith(
        "WHERE (state <> 'available' AND state <> 'scheduled' AND state <> 'retrying')")
    assert indexes["runner_job_claim"].endswith(
        "WHERE (state = 'available' OR state = 'scheduled' OR state = 'retrying') "
        "AND parked IS NULL")
    _open(old)  # opening the old file adds what is new, with the same shape
    assert _columns(old) == _columns(new)
    assert _indexes(old) == indexes


def test_a_file_from_a_newer_release_is_refused_and_left_alone(tmp_path):
    path = _old_file(tmp_path / "newer.db")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runner_meta SET value = '99' WHERE key = 'schema'")
        conn.execute("DROP INDEX runner_log_created")  # what a start would otherwise add back
    before = _contents(path)
    with pytest.raises(SchemaTooNew, match="schema version 99, written by a newer jobrunner"):
        _open(path)
    assert SchemaTooNew.exit_code == EX_CONFIG == 78
    assert _contents(path) == before


@pytest.mark.parametrize("recorded", ["abc", "", "6.0", "0", "-3"])
def test_a_damaged_schema_version_is_refused_as_a_corrupt_file_and_left_alone(tmp_path,
                                                                             recorded):
    # Given a jobs database whose recorded version is not a version number
    path = tmp_path / "damaged.db"
    _open(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runner_meta SET value = ? WHERE key = 'schema'", (recorded,))
    conn.close()
    before = _contents(path)
    # Then a writer and the dashboard refuse it naming the file and the value, exit 65
    with pytest.raises(DatabaseCorrupt) as refused:
        _open(path)
    assert refused.value.exit_code == EX_DATAERR
    assert str(refused.value).startswith(f"{path}: runner_meta records schema version "
                                         f"{recorded!r}"), str(refused.value)
    source = _reader(path)
    with pytest.raises(DatabaseCorrupt, match="records schema version"):
        source.check()
    source.close()
    assert _contents(path) == before


def test_an_older_file_is_migrated_forward_once(tmp_path, monkeypatch):
    path = _old_file(tmp_path / "old.db")
    ran = []

    def add_note(conn: sqlite3.Connection) -> None:
        ran.append(True)
        conn.execute("ALTER TABLE runner_job ADD COLUMN note TEXT")

    after = migrations.SCHEMA_VERSION + 1
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", after)
    monkeypatch.setattr(migrations, "MIGRATIONS", {**migrations.MIGRATIONS, after: add_note})
    monkeypatch.setattr(schema, "SCHEMA_VERSION", after)
    _open(path)
    _open(path)  # a second start finds it current
    assert ran == [True]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM runner_meta WHERE key='schema'").fetchone() == (
            str(after),)
        assert "note" in {c[1] for c in conn.execute("PRAGMA table_info(runner_job)")}


def test_a_file_with_tables_but_no_recorded_version_counts_as_the_first(tmp_path):
    path = _old_file(tmp_path / "unversioned.db")
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM runner_meta")
        assert migrations.recorded_version(conn, path) == 1
    _open(path)
    with sqlite3.connect(path) as conn:
        assert migrations.recorded_version(conn, path) == migrations.SCHEMA_VERSION


def _counted_v1_file(path: Path) -> Path:
    """A version 1 file with waiting and finished jobs, counted as that release counted them."""
    with sqlite3.connect(path) as conn:
        conn.executescript(COUNTED_V1_DDL.read_text())
        for n, (task, queue, state) in enumerate([
                ("t.a", "default", "available"), ("t.a", "default", "scheduled"),
                ("t.b", "default", "retrying"), ("t.b", "other", "available"),
                ("t.a", "default", "completed"), ("t.b", "other", "executing")]):
            conn.execute("INSERT INTO runner_job (id, task, queue, state, data, run_at, "
                         "created_at) VALUES (?, ?, ?, ?, x'00', ?, ?)",
                         (f"job-{n}", task, queue, state, T0, T0 + n))
        conn.execute("INSERT INTO runner_job_total (task, queue, enqueued, completed) "
                     "VALUES ('t.a', 'default', 7, 1)")
    conn.close()
    return path


def test_a_version_1_file_moves_its_waiting_counts_beside_the_totals(tmp_path):
    path = _counted_v1_file(tmp_path / "v1.db")
    with sqlite3.connect(path) as conn:
        assert dict(conn.execute("SELECT queue, waiting FROM runner_queue")) == {
            "default": 3, "other": 1}
    store = SqliteStore(_open(path))
    with sqlite3.connect(path) as conn:
        assert migrations.recorded_version(conn, path) == migrations.SCHEMA_VERSION
        kinds = dict(conn.execute("SELECT name, type FROM sqlite_master "
                                  "WHERE name LIKE 'runner_queue%'"))
        assert kinds["runner_queue"] == "view"  # the old table and its triggers are gone
        old = {f"runner_queue_{event}" for event in ("insert", "enter", "leave", "delete")}
        assert not old & set(kinds)
        assert dict(conn.execute("SELECT queue, waiting FROM runner_queue")) == {
            "default": 3, "other": 1}
        assert conn.execute("SELECT enqueued, completed, waiting FROM runner_job_total "
                            "WHERE task = 't.a' AND queue = 'default'").fetchone() == (7, 1, 0)
        assert conn.execute("SELECT enqueued, waiting FROM runner_job_total "
                            "WHERE task = '' AND queue = 'default'").fetchone() == (0, 3)
    # and the counts stay exact as the migrated file is used
    store.enqueue([NewJob("job-new", "t.a", "default", 0, b"x", None, 1, T0)], now=T0,
                  queue_size=4)
    claimed = store.claim(now=T0 + 10, owner="h:1:1", lease_seconds=30, want=2).claimed
    assert len(claimed) == 2
    with sqlite3.connect(path) as conn:
        assert dict(conn.execute("SELECT queue, waiting FROM runner_queue")) == dict(
            conn.execute("SELECT queue, count(*) FROM runner_job WHERE state IN "
                         "('available','scheduled','retrying') GROUP BY queue"))


def test_a_version_1_file_keeps_its_jobs_and_indexes_usable_after_migrating(tmp_path):
    old = _counted_v1_file(tmp_path / "v1.db")
    _open(old)
    new = tmp_path / "new.db"
    _open(new)
    assert _columns(old) == _columns(new)
    assert _indexes(old) == _indexes(new)
    with sqlite3.connect(old) as conn:
        triggers = {n for (n,) in conn.execute("SELECT name FROM sqlite_master "
                                               "WHERE type = 'trigger'")}
    with sqlite3.connect(new) as conn:
        assert triggers == {n for (n,) in conn.execute("SELECT name FROM sqlite_master "
                                                       "WHERE type = 'trigger'")}
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


V3_DDL = Path(__file__).parent / "data" / "schema_v3.sql"


def _v3_file(path: Path) -> Path:
    """A version 3 file (as that release created it) with jobs in every state, counted."""
    with sqlite3.connect(path) as conn:
        conn.executescript(V3_DDL.read_text())
        for n, (task, queue, state) in enumerate([
                ("t.a", "default", "available"), ("t.a", "default", "scheduled"),
                ("t.b", "default", "retrying"), ("t.b", "other", "available"),
                ("t.a", "default", "completed"), ("t.b", "other", "executing"),
                ("t.b", "other", "dead")]):
            conn.execute("INSERT INTO runner_job (id, task, queue, state, data, run_at, "
                         "created_at) VALUES (?, ?, ?, ?, x'00', ?, ?)",
                         (f"job-{n}", task, queue, state, T0 + n, T0 + n))
        conn.execute("INSERT INTO runner_job_total (task, queue, waiting) "
                     "VALUES ('', 'default', 3), ('', 'other', 1)")
    conn.close()
    return path


def test_a_version_3_file_gets_the_indexes_of_version_4_and_keeps_its_jobs(tmp_path):
    old = _v3_file(tmp_path / "v3.db")
    with sqlite3.connect(old) as conn:
        rowids = dict(conn.execute("SELECT id, rowid FROM runner_job"))
        assert migrations.recorded_version(conn, old) == 3
        assert "runner_job_queue_waiting" in {n for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
    store = SqliteStore(_open(old))
    new = tmp_path / "new.db"
    _open(new)
    assert _indexes(old) == _indexes(new)
    assert _columns(old) == _columns(new)
    with sqlite3.connect(old) as conn:
        assert migrations.recorded_version(conn, old) == migrations.SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # every job is in the index of its state, none in two
        waiting = conn.execute("SELECT count(*) FROM runner_job INDEXED BY "
                               f"runner_job_queue_claim WHERE {CLAIMABLE_WHERE}").fetchone()[0]
        past = conn.execute("SELECT count(*) FROM runner_job INDEXED BY runner_job_state_created "
                            f"WHERE {NOT_WAITING}").fetchone()[0]
        assert (waiting, past) == (4, 3)
        # the tables were copied to change their CHECK: same rows, same rowids (the
        # dashboard pages by rowid), and a state outside the list is still refused
        assert dict(conn.execute("SELECT id, rowid FROM runner_job")) == rowids
        tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        assert " IN (" not in tables["runner_job"] and " IN (" not in tables["runner_event"]
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("UPDATE runner_job SET state = 'lost' WHERE id = 'job-0'")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("INSERT INTO runner_event (id, name, data, emitted_at, status) "
                         "VALUES ('e', 'n', '{}', 0, 'gone')")
    before = {"available": 2, "scheduled": 1, "retrying": 1, "executing": 1,
              "completed": 1, "dead": 1, "cancelled": 0}
    assert store.counts_by_state() == before
    claimed = store.claim(now=T0 + 10, owner="h:1:1", lease_seconds=30, want=10).claimed
    assert {c.id for c in claimed} == {"job-0", "job-1", "job-2", "job-3"}
    assert store.counts_by_state() == {**before, "available": 0, "scheduled": 0,
                                       "retrying": 0, "executing": 5}


def test_a_version_4_file_gets_the_clock_offset_of_its_workers_and_keeps_them(tmp_path):
    path = _open(tmp_path / "v4.db").path
    SqliteStore(_open(path)).register("host:1:1", concurrency=2, queues=())
    with sqlite3.connect(path) as conn:  # as version 4 left it
        conn.execute("ALTER TABLE runner_worker DROP COLUMN clock_offset")
        conn.execute("UPDATE runner_meta SET value = '4' WHERE key = 'schema'")
    conn.close()
    store = SqliteStore(_open(path))
    [worker] = store.list_workers()
    assert (worker.id, worker.concurrency, worker.clock_offset) == ("host:1:1", 2, None)
    store.heartbeat("host:1:1", [], lease_seconds=30, clock_offset=0.25)
    assert store.list_workers()[0].clock_offset == 0.25
    assert _columns(path) == _columns(_open(tmp_path / "new.db").path)


def _reader(path: Path) -> DataSource:
    """The dashboard's view of a file: it reads through a read-only connection only."""
    return DataSource(path, DatabaseSection(busy_timeout=1.0), read_only=True)


def test_the_dashboard_says_why_it_cannot_show_a_file_no_worker_has_upgraded(tmp_path):
    path = _v3_file(tmp_path / "v3.db")
    before = _contents(path)
    source = _reader(path)
    # Every screen read the file through indexes it lacks ("no such index: ...").
    with pytest.raises(SchemaTooOld, match=rf"schema version 3.*knows version "
                       rf"{migrations.SCHEMA_VERSION}.*run\.py"):
        source.check()
    source.close()
    assert _contents(path) == before
    assert SchemaTooOld.exit_code == EX_TEMPFAIL
    _open(path)  # once a worker has upgraded it, the dashboard shows it
    source = _reader(path)
    source.check()
    with source.reading() as store:
        assert store.counts_by_state()["available"] == 2
    source.close()


def test_the_dashboard_says_why_it_cannot_show_a_file_missing_this_release_s_indexes(tmp_path):
    path = _open(tmp_path / "v4.db").path
    with sqlite3.connect(path) as conn:  # as the first release of version 4 left it
        conn.execute("DROP INDEX runner_job_future")
    conn.close()
    source = _reader(path)
    with pytest.raises(SchemaTooOld, match="runner_job_future"):
        source.check()
    source.close()


def test_the_dashboard_refuses_a_file_from_a_newer_release(tmp_path):
    path = _old_file(tmp_path / "newer.db")
    _open(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runner_meta SET value = '99' WHERE key = 'schema'")
    conn.close()
    before = _contents(path)
    source = _reader(path)
    with pytest.raises(SchemaTooNew, match="schema version 99"):
        source.check()
    source.close()
    assert _contents(path) == before


#: A process that migrates a file slowly, as one holding a large history does: the step
#: to version 4 copies every job. It touches argv[2] once it holds the write lock.
_SLOW_MIGRATION = """
import sys, time
from pathlib import Path
from runner.config import DatabaseSection
from runner.store.sqlite import migrations
from runner.store.sqlite.db import Database
from runner.store.sqlite.schema import prepare_database
step = migrations.MIGRATIONS[4]
def slow(conn):
    Path(sys.argv[2]).touch()
    time.sleep(float(sys.argv[3]))
    step(conn)
migrations.MIGRATIONS[4] = slow
prepare_database(Database(Path(sys.argv[1]), DatabaseSection()))
"""

#: A process that opens the file as a worker or a producer does (write deadline argv[2]).
_OPEN = """
import sys
from pathlib import Path
from runner.config import DatabaseSection
from runner.store.factory import open_store
store = open_store(Path(sys.argv[1]), options=DatabaseSection(write_deadline=float(sys.argv[2])))
print(store.counts_by_state()["available"])
"""


def test_a_process_opening_a_file_another_is_migrating_waits_for_it_and_does_not_fail(
        tmp_path):
    path = _v3_file(tmp_path / "v3.db")
    migrating = tmp_path / "migrating"
    first = subprocess.Popen([sys.executable, "-c", _SLOW_MIGRATION, str(path),
                              str(migrating), "3"])
    try:
        wait_for(migrating.exists, timeout=60, message="the first process to migrate")
        # The migration outlasts the second process's write deadline, as the copy of a
        # large file's jobs outlasts the default 15 s: it failed with 'database is locked'.
        second = subprocess.run([sys.executable, "-c", _OPEN, str(path), "0.5"],
                                capture_output=True, text=True, timeout=120)
    finally:
        assert first.wait(timeout=120) == 0
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.split() == ["2"]
    with sqlite3.connect(path) as conn:
        assert migrations.recorded_version(conn, path) == migrations.SCHEMA_VERSION
        assert dict(conn.execute("SELECT queue, waiting FROM runner_queue")) == {
            "default": 3, "other": 1}
    conn.close()


def test_a_version_5_file_gets_parking_and_keeps_its_waiting_jobs(tmp_path):
    path = _open(tmp_path / "v5.db").path
    keyed = [NewJob(f"key-{n}", "sync", "default", 0, b"x", None, 1, T0 - 10 + n,
                    concurrency_key="big") for n in range(5)]
    later = NewJob("later", "other", "default", 9, b"x", None, 1, T0 + 3600)
    SqliteStore(_open(path)).enqueue([*keyed, later], now=T0 - 10)
    with sqlite3.connect(path) as conn:  # as version 5 left it
        for name in ("runner_job_parked", "runner_job_parked_queue", "runner_job_claim",
                     "runner_job_queue_claim"):
            conn.execute(f"DROP INDEX {name}")
        waiting = "(state = 'available' OR state = 'scheduled' OR state = 'retrying')"
        conn.execute(f"CREATE INDEX runner_job_claim ON runner_job (priority DESC, run_at) "
                     f"WHERE {waiting}")
        conn.execute(f"CREATE INDEX runner_job_queue_claim ON runner_job "
                     f"(queue, priority DESC, run_at, state) WHERE {waiting}")
        conn.execute("DROP TABLE runner_room")
        conn.execute("ALTER TABLE runner_job DROP COLUMN parked")
        conn.execute("UPDATE runner_meta SET value = '5' WHERE key = 'schema'")
    conn.close()
    store = SqliteStore(_open(path))
    new = _open(tmp_path / "new.db").path
    assert (_columns(path), _indexes(path)) == (_columns(new), _indexes(new))
    limits = FlowLimits(key_concurrency={"sync": 1})
    claimed = store.claim(now=T0, owner="h:1:1", lease_seconds=30, want=3, limits=limits)
    assert [c.id for c in claimed.claimed] == ["key-0"]  # the others are held back, parked
    counts = store.counts_by_state()
    assert counts["available"] + counts["scheduled"] == 5  # four held back and "later"
    store.complete([Ack("key-0", 1, T0, T0)])
    claimed = store.claim(now=T0, owner="h:1:1", lease_seconds=30, want=3, limits=limits)
    assert [c.id for c in claimed.claimed] == ["key-1"]
    assert store.get_job("later").state == JobState.SCHEDULED
