"""A worker's WAL checkpoints, taken off its commits by the checkpointer thread."""

from __future__ import annotations

import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from runner.store.sqlite.checkpointer import Checkpointer
from runner.store.sqlite.db import Database

PAGE = 4096
#: Five pages of their own per commit (a blob larger than a page overflows).
BLOB = os.urandom(5 * PAGE - 200)


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "wal.db")
    database.write(lambda conn: conn.execute("CREATE TABLE t (b BLOB)"))
    yield database
    database.close()


def commit_pages(db: Database, commits: int) -> None:
    for _ in range(commits):
        db.write(lambda conn: conn.execute("INSERT INTO t (b) VALUES (?)", (BLOB,)))


def wal_frames(db: Database) -> int:
    return os.path.getsize(f"{db.path}-wal") // (PAGE + 24)


def frames_since_restart(db: Database) -> int:
    """Frames written since the WAL last started over (a one-row commit first, which
    starts it over when the last checkpoint reached its end)."""
    db.write(lambda conn: conn.execute("INSERT INTO t (b) VALUES (x'00')"))
    _, log, _ = db.query("PRAGMA wal_checkpoint(PASSIVE)")[0]
    return log


def test_commits_leave_the_checkpoints_to_the_checkpointer(db):
    checkpointer = Checkpointer(db, interval=3600)  # its thread never gets round to it
    checkpointer.start()
    try:
        commit_pages(db, 300)  # 1,500 pages: SQLite's own would checkpoint at 1,000
        assert wal_frames(db) >= 1500
        log, done = checkpointer.checkpoint()
        assert done == log >= 1500
        assert frames_since_restart(db) < 10
    finally:
        checkpointer.stop()


def test_the_checkpointer_thread_copies_the_commits_into_the_file(db):
    checkpointer = Checkpointer(db, interval=0.01)
    checkpointer.start()
    try:
        before = db.path.stat().st_size
        commit_pages(db, 300)
        deadline = time.monotonic() + 10
        while db.path.stat().st_size < before + 1400 * PAGE:
            assert time.monotonic() < deadline, "the checkpointer copied nothing"
            time.sleep(0.01)
    finally:
        checkpointer.stop()


def test_a_pass_past_the_usual_size_copies_to_the_end_so_the_wal_starts_over(db):
    checkpointer = Checkpointer(db, interval=3600, restart_frames=100)
    checkpointer.start()
    try:
        commit_pages(db, 30)  # 150 frames
        log, done = checkpointer.checkpoint()
        assert done == log >= 150
        assert frames_since_restart(db) < 10
    finally:
        checkpointer.stop()


def test_commits_checkpoint_by_themselves_again_once_it_stops(db):
    checkpointer = Checkpointer(db, interval=3600)
    checkpointer.start()
    commit_pages(db, 10)  # this thread's connection turns its own checkpoints off
    checkpointer.stop()
    commit_pages(db, 300)
    assert frames_since_restart(db) < 1010


def test_a_worker_checkpoints_in_the_background_while_it_consumes(huey):
    storage = huey.jobs
    storage.start_consuming("w1")
    try:
        assert storage.store.db.deferred_checkpoints
    finally:
        storage.stop_consuming()
    assert not storage.store.db.deferred_checkpoints


def test_a_file_restored_from_a_backup_is_the_one_checkpointed(db, tmp_path):
    checkpointer = Checkpointer(db, interval=3600)
    checkpointer.start()
    try:
        with ThreadPoolExecutor(max_workers=1) as thread:  # one thread: one connection
            thread.submit(checkpointer.checkpoint).result()
            backup = sqlite3.connect(tmp_path / "backup.db")
            source = sqlite3.connect(db.path)
            source.backup(backup)
            source.close()
            backup.close()
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(f"{db.path}{suffix}"):
                    os.replace(f"{db.path}{suffix}", f"{db.path}.old{suffix}")
            os.replace(tmp_path / "backup.db", db.path)
            commit_pages(db, 300)
            log, done = thread.submit(checkpointer.checkpoint).result()
        assert done == log >= 1500
    finally:
        checkpointer.stop()
