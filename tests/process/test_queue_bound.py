"""A queue bound holds exactly when several processes enqueue at once, whatever on_full says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runner.settings_loader import load_settings
from runner.store.factory import store_for
from runner.store.sqlite import queries
from runner.store.sqlite.db import open_database
from runner.store.sqlite.schema import prepare_database
from runner.store.states import JobState
from tests.conftest import ROOT, read_records, wait_for, write_settings

PRODUCERS = 8

PRODUCER = """
import os, sys, time
from runner.errors import QueueFull
from tests import jobs
open(f"{sys.argv[2]}.ready.{os.getpid()}", "w").close()  # imported: ready to start
while not os.path.exists(sys.argv[2]):  # all producers start together
    time.sleep(0.001)
accepted = 0
for n in range(int(sys.argv[1])):
    try:
        jobs.record_run(f"{os.getpid()}-{n}")
        accepted += 1
    except QueueFull:
        pass
print(accepted)
"""


def release(producers: list, go: Path) -> None:
    """Start ``producers`` together: once each has imported, the go file releases them."""
    wait_for(lambda: len(list(go.parent.glob(f"{go.name}.ready.*"))) == len(producers),
             timeout=60, message="every producer to import")
    go.touch()


def produce(tmp_path: Path, settings: Path, each: int) -> list[int]:
    """Run PRODUCERS producer processes at once; how many jobs each got in."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_SETTINGS": str(settings)}
    go = tmp_path / "go"
    producers = [subprocess.Popen([sys.executable, "-c", PRODUCER, str(each), str(go)],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
                 for _ in range(PRODUCERS)]
    release(producers, go)
    out = [p.communicate(timeout=180)[0] for p in producers]
    assert all(p.returncode == 0 for p in producers), out
    return [int(o.split()[-1]) for o in out]


def open_db(tmp_path: Path, settings: Path):
    db = open_database(tmp_path / "jobs.db", load_settings(settings, environ={}).database)
    prepare_database(db)
    return db


def waiting(db) -> int:
    rows = db.query("SELECT waiting FROM runner_queue WHERE queue = 'default'")
    return rows[0][0] if rows else 0


def test_reject_keeps_eight_producers_at_the_bound_and_counts_the_rest(tmp_path: Path):
    settings = write_settings(tmp_path, worker={"queue_size": 20},
                              extra='\n[queues.default]\non_full = "reject"\n')
    accepted = produce(tmp_path, settings, 5)
    db = open_db(tmp_path, settings)
    assert sum(accepted) == 20
    assert queries.count_jobs(db) == 20 and waiting(db) == 20
    assert store_for(db).backpressure_totals()["default"] == (PRODUCERS * 5 - 20, 0)


def test_drop_oldest_keeps_eight_producers_at_the_bound_and_cancels_the_oldest(tmp_path: Path):
    settings = write_settings(tmp_path, worker={"queue_size": 20},
                              extra='\n[queues.default]\non_full = "drop_oldest"\n')
    accepted = produce(tmp_path, settings, 5)
    db = open_db(tmp_path, settings)
    assert sum(accepted) == PRODUCERS * 5  # every enqueue succeeds ...
    assert waiting(db) == 20  # ... and the oldest make room
    assert queries.count_jobs(db) == PRODUCERS * 5  # cancelled, never deleted
    dropped = queries.list_jobs(db, queries.JobFilter(state="cancelled"), limit=100)
    assert len(dropped) == PRODUCERS * 5 - 20
    assert all("dropped: queue 'default' was full" in (j.reason or "") for j in dropped)
    assert store_for(db).backpressure_totals()["default"] == (0, PRODUCERS * 5 - 20)


def test_block_lets_eight_producers_through_a_small_queue_as_a_worker_drains(
        tmp_path: Path, make_worker, record_file):
    settings = write_settings(tmp_path, worker={"queue_size": 20},
                              extra='\n[queues.default]\nblock_timeout = 60\n')
    db = open_db(tmp_path, settings)
    worker = make_worker(settings=settings)
    wait_for(lambda: store_for(db).list_workers(), timeout=30, message="the worker")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_SETTINGS": str(settings),
           "TEST_RECORD_FILE": str(record_file)}
    go = tmp_path / "go"
    producers = [subprocess.Popen([sys.executable, "-c", PRODUCER, "40", str(go)],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
                 for _ in range(PRODUCERS)]
    release(producers, go)
    most = 0
    while any(p.poll() is None for p in producers):
        most = max(most, waiting(db))
    out = [p.communicate(timeout=10)[0] for p in producers]
    assert [int(o.split()[-1]) for o in out] == [40] * PRODUCERS
    assert most <= 20
    wait_for(lambda: len(read_records(record_file)) >= PRODUCERS * 40, timeout=60,
             message="every job to run")
    labels = [line.split()[0] for line in read_records(record_file)]
    assert len(labels) == len(set(labels)) == PRODUCERS * 40  # each exactly once
    assert store_for(db).backpressure_totals().get("default", (0, 0)) == (0, 0)
    assert worker.terminate() == 0


BATCH_SCRIPT = """
from tests import jobs
results = jobs.noop.map(range(20000))
print(len(list(results._results)))
"""


def test_a_batch_of_20000_jobs_goes_through_the_shipped_settings_with_a_worker_running(
        tmp_path: Path, make_worker):
    shipped = (ROOT / "settings.toml").read_text()
    assert "queue_size = 1000" in shipped and "[queues" not in shipped.replace("# [queues", "")
    settings = tmp_path / "settings.toml"
    settings.write_text(shipped.replace('imports = ["tasks.examples"]',
                                        'imports = ["tasks.examples", "tests.jobs"]')
                        .replace('database = "jobs.db"', f'database = "{tmp_path / "jobs.db"}"'))
    db = open_db(tmp_path, settings)
    worker = make_worker(settings=settings)
    wait_for(lambda: store_for(db).list_workers(), timeout=30, message="the worker")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_SETTINGS": str(settings)}
    script = subprocess.run([sys.executable, "-c", BATCH_SCRIPT], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert script.returncode == 0, script.stderr[-2000:]
    assert script.stdout.split()[-1] == "20000"
    assert queries.count_jobs(db) == 20000
    wait_for(lambda: store_for(db).counts_by_state()[JobState.COMPLETED] == 20000, timeout=300,
             interval=0.5, message="every job to run")
    assert worker.terminate() == 0
