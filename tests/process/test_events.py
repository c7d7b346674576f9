"""Events across processes: a locked database, the CLI, a worker started late, many producers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import pytest

from runner import DatabaseLocked, emit
from runner.store.sqlite import events as store
from runner.testing import drain
from tests import event_handlers  # noqa: F401 - the handlers drain() runs here
from tests.conftest import ROOT, read_records, wait_for, wait_for_count
from tests.event_support import count, db_of, write_events_settings


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return write_events_settings(tmp_path)


# -- patterns -------------------------------------------------------------------

# -- emit and fan-out --------------------------------------------------------------

# -- against a locked database --------------------------------------------------------

def test_emit_on_a_locked_database_fails_clearly_and_writes_nothing(huey, settings_file):
    holder = sqlite3.connect(db_of(huey).path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseLocked, match="nothing was written"):
            emit("shop.order.placed", {"n": 1})
        assert time.monotonic() - started < 5
        cli = subprocess.run(
            [sys.executable, "-m", "runner", "--settings", str(settings_file), "emit",
             "shop.order.placed", "--data", '{"n": 1}'],
            cwd=settings_file.parent, capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert cli.returncode == 75, cli.stderr
        assert "locked" in cli.stderr and "nothing was written" in cli.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert count(huey, "SELECT count(*) FROM runner_event") == 0
    assert count(huey, "SELECT count(*) FROM runner_job") == 0


def test_cli_emit_events_and_handlers(huey, settings_file):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "runner", "--settings", str(settings_file), *args],
            cwd=settings_file.parent, capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)})

    done = cli("emit", "fix.me", "--data", '{"n": 1}', "--key", "k1")
    assert done.returncode == 0, done.stderr
    event_id = done.stdout.strip()
    assert store.get_event(db_of(huey), event_id).source == "cli"
    assert cli("emit", "fix.me", "--data", "{nope").returncode == 65
    drain(include_scheduled=True)
    listing = cli("events", "--name", "fix.*", "--since", "1h")
    assert listing.returncode == 0, listing.stderr
    assert event_id[-12:] in listing.stdout and "flaky:dead" in listing.stdout
    assert "steady:completed" in listing.stdout
    replayed = cli("events", "replay", "--name", "fix.*", "--since", "1h", "--only-failed")
    assert replayed.returncode == 0, replayed.stderr
    assert "replay of 1 event(s) queued as job(s)" in replayed.stdout
    assert store.get_event(db_of(huey), event_id).deliveries == 1  # a worker delivers it
    drain(include_scheduled=True)
    shown = cli("events", "show", event_id[-12:])
    assert shown.returncode == 0 and "deliveries: 2" in shown.stdout
    subs = cli("handlers")
    assert subs.returncode == 0, subs.stderr
    assert "shop.**" in subs.stdout and "order_broken" in subs.stdout


def test_cli_emit_refuses_data_with_a_key_twice(huey, settings_file):
    # JSON keeps the last of two equal keys: the first value would be lost unsaid
    done = subprocess.run(
        [sys.executable, "-m", "runner", "--settings", str(settings_file), "emit", "a.b",
         "--data", '{"order": {"1": "one", "1": "uno"}}'],
        cwd=settings_file.parent, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 65, done.stderr
    assert "--data: data['order'] has the key '1' twice" in done.stderr
    assert "nothing was written" in done.stderr
    assert count(huey, "SELECT count(*) FROM runner_event") == 0


# -- with real worker processes ---------------------------------------------------------

def test_event_emitted_before_any_worker_is_handled_once_one_starts(
        huey, record_file, make_worker):
    # Given events emitted while no worker runs
    ids = [emit("early.bird", {"n": n}) for n in range(3)]
    assert count(huey, "SELECT count(*) FROM runner_event WHERE status='pending'") == 3
    # When a worker starts
    worker = make_worker()
    wait_for(lambda: len(read_records(record_file)) == 3, timeout=30, message="handlers ran")
    worker.terminate()
    # Then every event was dispatched and handled exactly once
    assert sorted(r.split()[1] for r in read_records(record_file)) == ["0", "1", "2"]
    statuses = {store.get_event(db_of(huey), i).status for i in ids}
    assert statuses == {"dispatched"}


PRODUCER = textwrap.dedent("""
    import sys
    from runner import configure, emit, load_settings
    configure(load_settings(sys.argv[1], environ={}))
    producer, total = int(sys.argv[2]), int(sys.argv[3])
    for i in range(total):
        emit("load.tick", {"p": producer, "i": i})
""")


@pytest.mark.chaos
# The waits below give up first, each with its own message (the drain when it stops
# moving for 30 s: inside a parallel suite it takes minutes); this guard bounds the whole.
@pytest.mark.timeout(300)
def test_eight_producers_emit_40000_events_while_a_worker_consumes(
        huey, record_file, make_worker, tmp_path):
    producers, per_producer = 8, 5000
    settings = tmp_path / "load.toml"
    settings.write_text(Path(tmp_path / "settings.toml").read_text()
                        .replace("max_concurrent_tasks = 4", "max_concurrent_tasks = 2")
                        .replace("emit_deadline = 0.3", "emit_deadline = 30")
                        .replace("write_deadline = 0.3", "write_deadline = 30"))
    worker = make_worker(settings=settings)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TEST_RECORD_FILE": str(record_file)}
    procs = [subprocess.Popen([sys.executable, "-c", PRODUCER, str(settings), str(p),
                               str(per_producer)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for p in range(producers)]
    # Kill the worker once mid-run, then start another: leased jobs must be recovered.
    wait_for(lambda: len(read_records(record_file)) > 2000, timeout=60, interval=0.05,
             message="some events handled")
    worker.kill()
    worker = make_worker(settings=settings)
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err
    total = producers * per_producer
    assert count(huey, "SELECT count(*) FROM runner_event") == total
    wait_for_count(lambda: count(huey, "SELECT count(*) FROM runner_job WHERE task='tick' "
                                       "AND state='completed'"), total,
                   message="handler jobs completed")
    worker.terminate()
    # Every event was handled; one handler job per event; repeats only as later attempts
    runs: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for line in read_records(record_file):
        tick, job_id, attempt = line.split()
        runs[tick].append((job_id, int(attempt)))
    assert len(runs) == total
    for tick, seen in runs.items():
        assert len({job_id for job_id, _ in seen}) == 1, tick
        assert len({attempt for _, attempt in seen}) == len(seen), tick
    assert count(huey, "SELECT count(*) FROM runner_job WHERE task='tick'") == total
    assert count(huey, "SELECT count(*) FROM runner_event WHERE status != 'dispatched'") == 0
