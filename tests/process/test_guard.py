"""Disk full: the worker stops claiming without crashing and resumes once space is back."""

from __future__ import annotations

import sqlite3
import subprocess
import time

import pytest

from tests import jobs
from tests.conftest import read_records, wait_for, write_settings


def page_count(conn):
    return conn.execute("PRAGMA page_count").fetchone()[0]


def test_disk_full_holds_claims_and_resumes_when_space_is_freed(huey, make_worker, tmp_path,
                                                                record_file):
    # Given a worker whose database may not grow past the current size + headroom
    conn = sqlite3.connect(huey.jobs.db.path, isolation_level=None)
    conn.execute("PRAGMA incremental_vacuum")
    cap = page_count(conn) + 40
    settings = write_settings(tmp_path, extra=f"max_page_count = {cap}\n")
    worker = make_worker(settings=settings)
    wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    # When another process fills the file up to the cap
    conn.execute("CREATE TABLE filler (b BLOB)")
    while page_count(conn) < cap + 5:
        conn.execute("INSERT INTO filler VALUES (randomblob(8000))")
    conn.execute("PRAGMA incremental_vacuum")
    wait_for(lambda: "claiming stopped until space returns" in worker.output(),
             message="disk-full hold")
    # Then new jobs are not claimed, and the worker keeps running
    results = [jobs.record_run(f"job{i}") for i in range(10)]
    deadline = time.monotonic() + 1.5  # three poll intervals: an absence is observed, not awaited
    while time.monotonic() < deadline:
        # (single enqueues wait in the intake until a transaction moves them)
        assert conn.execute("SELECT DISTINCT state FROM runner_job UNION "
                            "SELECT DISTINCT state FROM runner_intake").fetchall() == [
            ("available",)]
        time.sleep(0.05)
    assert worker.proc.poll() is None
    # When space is freed, claiming resumes without a restart and nothing is lost
    conn.execute("DROP TABLE filler")
    wait_for(lambda: "claiming resumes" in worker.output(), message="resume")
    assert [r.get(blocking=True, timeout=15) for r in results] == [f"job{i}" for i in range(10)]
    labels = sorted(line.split()[0] for line in read_records(record_file))
    assert labels == sorted(f"job{i}" for i in range(10))
    assert worker.terminate() == 0
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()




def test_a_database_found_corrupt_while_running_stops_the_worker_with_exit_65(
        huey, make_worker, settings_file, tmp_path):
    db_path = huey.jobs.store.db.path
    # Given jobs that come due a few seconds from now, spread over many pages
    for _ in range(300):
        jobs.add.schedule((1, 1), delay=4)
    worker = make_worker()
    wait_for(lambda: "started" in worker.output(), timeout=30, message="the worker's start")
    # and one page of their rows damaged on disk under the running worker
    conn = sqlite3.connect(db_path)
    wait_for(lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0,
             timeout=10, message="a checkpoint")
    leaves = [n for (n,) in conn.execute("SELECT pageno FROM dbstat WHERE name = 'runner_job' "
                                         "AND pagetype = 'leaf' ORDER BY pageno")]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(db_path, "r+b") as f:
        f.seek((leaves[len(leaves) // 2] - 1) * size)
        f.write(b"\x13\x37" * (size // 2))
    # (a write elsewhere makes every other connection read the file again)
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE runner_meta SET value = value WHERE key = 'schema'")
    conn.commit()
    conn.close()
    # Then it stops claiming and exits 65, which systemd's unit does not restart
    try:
        code = worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running:\n{worker.output()[-3000:]}")
    assert code == 65, worker.output()
    output = worker.output()
    assert "malformed" in output and "restore a backup" in output
    assert output.count("Error reading from queue") == 0
