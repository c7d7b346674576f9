"""A producer whose jobs file is replaced or deleted under it."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest

from runner import DatabaseUnavailable
from runner.store.sqlite.db import Database
from runner.store.sqlite.schema import prepare_database
from tests import jobs


def ids_in(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        # Single enqueues wait in the intake until a transaction moves them.
        return {r[0] for r in conn.execute(
            "SELECT id FROM runner_job UNION ALL SELECT id FROM runner_intake")}
    finally:
        conn.close()


def restore(backup, path) -> None:
    """What the README says: move the file and its -wal/-shm aside, put the copy in place."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.replace(f"{path}{suffix}", f"{path}.broken{suffix}")
    os.replace(backup, path)


def test_a_producer_writes_into_the_restored_file_not_the_replaced_one(huey, tmp_path):
    path = huey.jobs.db.path
    before = jobs.add(1, 1)
    backup = tmp_path / "backup.db"
    source = sqlite3.connect(path)
    target = sqlite3.connect(backup)
    source.backup(target)
    source.close()
    target.close()
    jobs.add(2, 2)  # written after the backup: lost with the restore
    restore(backup, path)
    after = jobs.add(3, 3)
    assert ids_in(path) == {before.id, after.id}


def test_a_producer_recreates_the_schema_in_an_empty_replacement(huey, tmp_path):
    path = huey.jobs.db.path
    jobs.add(1, 1)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    restore(empty, path)
    after = jobs.add(2, 2)
    assert ids_in(path) == {after.id}


def test_an_empty_file_becomes_a_new_database_with_incremental_auto_vacuum(tmp_path):
    # An empty file is a new database: set up as one the runner creates itself, so
    # pruned rows give space back (auto_vacuum cannot be turned on later without a VACUUM)
    path = tmp_path / "jobs.db"
    path.touch()
    db = Database(path)
    prepare_database(db)
    assert db.query("PRAGMA auto_vacuum") == [(2,)]
    assert db.query("PRAGMA journal_mode") == [("wal",)]
    db.close()


def test_a_deleted_file_is_refused_loudly_and_nothing_is_written(huey):
    path = huey.jobs.db.path
    jobs.add(1, 1)
    os.remove(path)
    with pytest.raises(DatabaseUnavailable, match="deleted while open"):
        jobs.add(2, 2)
    assert not path.exists()


def test_a_deleted_file_is_not_made_again_by_a_thread_that_opens_it_later(huey):
    # Given a worker's file deleted while it runs (not replaced)
    import threading

    path = huey.jobs.db.path
    jobs.add(1, 1)
    os.remove(path)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    # When another of its threads opens its connection (a read, then a write)
    raised: list[BaseException] = []

    def use() -> None:
        for act in (lambda: huey.jobs.store.count_jobs(), lambda: jobs.add(2, 2)):
            try:
                act()
            except DatabaseUnavailable as exc:
                raised.append(exc)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    # Then both are refused, and no empty file takes the deleted one's place
    assert len(raised) == 2 and all("deleted while open" in str(e) for e in raised), raised
    assert not path.exists()


def test_a_shared_read_handle_keeps_one_connection_for_every_polling_thread(tmp_path):
    import threading

    from runner.store.factory import open_store

    open_store(tmp_path / "jobs.db").count_jobs()
    reader = open_store(tmp_path / "jobs.db", readonly=True, shared=True)
    seen = []

    def poll() -> None:
        reader.refresh()
        reader.count_jobs()
        seen.append(id(reader.db.connection()))

    for _ in range(3):
        thread = threading.Thread(target=poll)
        thread.start()
        thread.join()
    assert len(seen) == 3 and len(set(seen)) == 1


def test_a_shared_read_handle_reopens_a_replaced_file(tmp_path):
    from runner.store.factory import open_store

    path = tmp_path / "jobs.db"
    first = open_store(path)
    first.count_jobs()
    first.close()
    reader = open_store(path, readonly=True, shared=True)
    assert reader.count_jobs() == 0
    other = tmp_path / "other.db"
    writer = open_store(other)
    writer.kv_put("k", b"v")
    writer.close()
    other.replace(path)  # a restore swaps the file
    reader.refresh()
    assert reader.kv_items() == {"k": b"v"}


def test_a_connection_opened_while_another_process_sets_the_file_up_waits_for_it(tmp_path):
    # Eight producers opening a new file at once: one held the write lock while another's
    # PRAGMA journal_mode = wal needed it, and SQLite refuses that at once (a shared lock
    # waiting on a reserved one could deadlock), so the opener failed with DatabaseLocked.
    path = tmp_path / "jobs.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE setup (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO setup VALUES (1)")
    released = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    released.start()
    try:
        db = Database(path)
        conn = db.connection()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
    finally:
        released.join()
        holder.close()


def test_a_database_path_through_a_file_names_the_file(tmp_path):
    (tmp_path / "settings.toml").write_text("")
    with pytest.raises(DatabaseUnavailable, match=r"settings.toml is a file, not a directory"):
        Database(tmp_path / "settings.toml" / "data" / "jobs.db")


def test_creation_problem_says_nothing_of_a_path_that_can_be_made(tmp_path):
    from runner.files import creation_problem

    assert creation_problem(tmp_path / "a" / "b" / "jobs.db") is None
    assert not (tmp_path / "a").exists()  # nothing was left behind
    assert list(tmp_path.iterdir()) == []


def _in_thread(fn):
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def test_every_thread_writes_on_one_connection_whose_pages_stay_cached(tmp_path):
    # SQLite empties a connection's page cache whenever another connection has written:
    # writes going round the threads' own connections read every page again each time.
    db = Database(tmp_path / "jobs.db")
    prepare_database(db)
    used = [_in_thread(lambda: db.write(id)) for _ in range(3)] + [db.write(id)]
    assert len(set(used)) == 1
    readers = {_in_thread(lambda: id(db.connection())) for _ in range(2)}
    assert used[0] not in readers  # reads still run on each thread's own connection


def test_a_read_inside_a_write_sees_what_the_write_wrote_so_far(tmp_path):
    db = Database(tmp_path / "jobs.db")
    prepare_database(db)
    db.write(lambda conn: conn.execute("CREATE TABLE t (x)"))

    def write(conn: sqlite3.Connection) -> list[tuple]:
        conn.execute("INSERT INTO t VALUES (7)")
        return db.query("SELECT x FROM t")

    assert db.write(write) == [(7,)]


def test_a_replaced_file_found_by_a_write_reopens_the_other_threads_reads(tmp_path):
    path = tmp_path / "jobs.db"
    db = Database(path)
    prepare_database(db)
    db.write(lambda conn: conn.execute("CREATE TABLE t (x)"))
    results: list = []
    go, done = threading.Event(), threading.Event()

    def read_twice() -> None:
        results.append(db.query("SELECT count(*) FROM t"))
        go.wait(10)
        results.append(db.query("SELECT count(*) FROM t"))
        done.set()

    thread = threading.Thread(target=read_twice)  # long-lived: its connection opened once
    thread.start()
    while not results:
        threading.Event().wait(0.001)
    other = tmp_path / "other.db"
    backup = Database(other)  # a backup of the jobs file, taken after two more rows
    prepare_database(backup)
    for sql in ("CREATE TABLE t (x)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)"):
        backup.write(lambda conn, sql=sql: conn.execute(sql))
    backup.close()  # the last connection to close writes the WAL into the file
    restore(other, path)
    db.write(lambda conn: None)  # the write hears of the swap
    go.set()
    done.wait(10)
    thread.join()
    assert results == [[(0,)], [(2,)]]


def test_a_forked_child_writes_on_a_connection_of_its_own(tmp_path):
    db = Database(tmp_path / "jobs.db")
    prepare_database(db)
    db.write(lambda conn: conn.execute("CREATE TABLE t (x)"))
    parents = db.write(id)
    pid = os.fork()
    if pid == 0:  # SQLite forbids using a connection across fork
        code = 1
        try:
            if db.write(id) != parents and db.connection() is not None:
                db.write(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert db.write(id) == parents
    assert db.query("SELECT x FROM t") == [(1,)]
