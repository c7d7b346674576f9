"""Worker processes on Redis: jobs run end to end, kills lose nothing, Redis restarts pass."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.registry import configure, get_huey
from runner.runner_huey import RunnerHuey
from runner.settings_loader import load_settings
from runner.store.redis import RedisStore
from tests import jobs
from tests.conftest import read_records, wait_for
from tests.redis_support import OwnRedis, new_prefix, redis_or_skip, redis_settings
from tests.unit.test_cli_unreachable import web_server


def _configured(settings: Path) -> RunnerHuey:
    import tests.jobs  # noqa: F401 - registers the test tasks

    configure(load_settings(settings, environ={}))
    return get_huey()


def _store(huey: RunnerHuey) -> RedisStore:
    store = huey.jobs.store  # type: ignore[union-attr]
    assert isinstance(store, RedisStore)
    return store


@pytest.fixture
def on_redis(tmp_path: Path) -> Iterator[tuple[RunnerHuey, Path]]:
    """The runner and a settings file on the shared Redis, under a prefix of this test."""
    redis_or_skip()
    settings = redis_settings(tmp_path, new_prefix())
    huey = _configured(settings)
    yield huey, settings
    _store(huey).delete_all()
    _store(huey).close()


def test_a_worker_process_on_redis_runs_jobs_and_stops_cleanly(on_redis, make_worker):
    huey, settings = on_redis
    results = [jobs.add(n, 1) for n in range(20)]
    worker = make_worker(settings=settings)
    assert [r.get(blocking=True, timeout=30) for r in results] == list(range(1, 21))
    late = jobs.add(2, 2)  # while the worker idles: a wake-up over pub/sub starts it
    assert late.get(blocking=True, timeout=10) == 4
    store = _store(huey)
    assert store.counts_by_state()["completed"] == 21
    assert worker.terminate() == 0
    [row] = store.list_workers(include_stopped=True)
    assert row.state == "stopped"


def test_an_idle_worker_process_starts_a_quick_job_at_once_not_at_its_poll(
        tmp_path, make_worker):
    redis_or_skip()
    settings = redis_settings(tmp_path, new_prefix(), worker={"poll_interval": 60})
    huey = _configured(settings)
    try:
        make_worker(settings=settings)
        assert jobs.add(1, 1).get(blocking=True, timeout=30) == 2  # up, and idle after
        for n in range(5):  # each one into an empty inbox, the worker waiting on its wake-up
            started = time.monotonic()
            assert jobs.add(n, 1).get(blocking=True, timeout=30) == n + 1
            assert time.monotonic() - started < 2.0, "the worker waited for its poll"
    finally:
        _store(huey).delete_all()
        _store(huey).close()


def test_a_killed_worker_process_job_runs_again_on_redis(on_redis, make_worker, record_file):
    huey, settings = on_redis
    result = jobs.record_then_sleep("slow", 30)
    worker = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: read_records(record_file), message="the job to start")
    worker.kill()
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: len(read_records(record_file)) >= 2, timeout=30,
             message="the job to run again in the second worker")
    row = _store(huey).get_job(result.id)
    assert (row.attempt, row.crashes) == (2, 1)


JOBS = 2000
KILLS = 100


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_random_sigkills_across_two_workers_lose_no_job_on_redis(
        tmp_path, make_worker, record_file):
    redis_or_skip()
    settings = redis_settings(tmp_path, new_prefix(), worker={
        "crash_limit": 0, "max_concurrent_tasks": 2, "lease_seconds": 30})
    huey = _configured(settings)
    store = _store(huey)
    try:
        ids = {jobs.short_work(n).id: n for n in range(JOBS)}
        rng = random.Random(1234)
        workers = [make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
                   for _ in range(2)]
        for kill in range(KILLS):
            if kill % 10 == 9:  # every tenth kill lands in workers running jobs, however
                # slowly a loaded machine starts them; the others anywhere from start-up on
                wait_for(lambda: all("ready:" in w.output() for w in workers), timeout=60,
                         message="the workers to be ready")
            time.sleep(rng.uniform(0.05, 0.6))  # the kill lands at a random moment
            victim = rng.randrange(2)
            workers[victim].kill()
            workers[victim] = make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
        wait_for(lambda: store.counts_by_state()["completed"] == JOBS, timeout=180,
                 interval=0.2, message="every job to complete")
        runs: dict[int, list[int]] = defaultdict(list)
        for line in read_records(record_file):
            n, attempt = line.split()
            runs[int(n)].append(int(attempt))
        assert set(runs) == set(range(JOBS)), "every job ran at least once"
        for n, attempts in runs.items():
            assert len(attempts) == len(set(attempts)), f"job {n} ran twice in one attempt"
        rows = {row.id: row for row in store.list_jobs(limit=JOBS + 1)}
        assert set(rows) == set(ids)
        for job_id, row in rows.items():
            assert row.attempt == row.crashes + 1, (row.id, row.attempt, row.crashes)
            assert max(runs[ids[job_id]]) <= row.attempt
    finally:
        store.delete_all()


def test_a_worker_started_before_its_redis_waits_for_it_then_runs_jobs(tmp_path, make_worker):
    server = OwnRedis(tmp_path / "redis")  # not started yet: the host boots before Redis
    try:
        settings = redis_settings(tmp_path, new_prefix(), url=server.url)
        worker = make_worker(settings=settings)
        wait_for(lambda: "database not reachable at start-up" in worker.output(), timeout=30,
                 message="the failed first look to be logged")
        assert worker.proc.poll() is None, worker.output()  # waiting, not exited
        assert "restore a backup" not in worker.output()
        server.start()
        huey = _configured(settings)
        assert jobs.add(3, 4).get(blocking=True, timeout=60) == 7
        assert worker.terminate() == 0
        _store(huey).close()
    finally:
        server.stop()


def test_a_worker_pointed_at_another_kind_of_server_waits_and_never_advises_a_restore(
        tmp_path, make_worker):
    with web_server() as port:
        settings = redis_settings(tmp_path, new_prefix(), url=f"redis://127.0.0.1:{port}/0")
        worker = make_worker(settings=settings)
        wait_for(lambda: "database not reachable at start-up" in worker.output(), timeout=30,
                 message="the failed first look to be logged")
        assert "does not answer as Redis does" in worker.output()
        assert worker.proc.poll() is None, worker.output()
        assert worker.terminate() == 0
    said = worker.output()
    assert "integrity" not in said and "restore a backup" not in said
    assert "Traceback" not in said


@pytest.mark.chaos
@pytest.mark.timeout(300)
def test_redis_killed_and_restarted_during_a_run_loses_no_accepted_job(
        tmp_path, make_worker, record_file):
    server = OwnRedis(tmp_path / "redis")
    server.start()
    try:
        settings = redis_settings(tmp_path, "restart", url=server.url,
                                  worker={"crash_limit": 0, "max_concurrent_tasks": 2})
        huey = _configured(settings)
        store = _store(huey)
        ids = [jobs.short_work(n).id for n in range(3000)]
        time.sleep(1.5)  # appendfsync everysec: what was accepted a second ago is on disk
        workers = [make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
                   for _ in range(2)]
        wait_for(lambda: all("ready:" in w.output() for w in workers)
                 and len(read_records(record_file)) >= 30, timeout=30,
                 message="both workers to be running jobs")
        server.kill()  # a crash of Redis itself, mid-run
        done_before = {line.split()[0] for line in read_records(record_file)}
        time.sleep(1.0)
        server.start()  # the AOF is replayed
        wait_for(lambda: store.counts_by_state()["completed"] == len(ids), timeout=120,
                 interval=0.2, message="every accepted job to complete after the restart")
        done = {int(line.split()[0]) for line in read_records(record_file)}
        assert done == set(range(len(ids)))
        assert all(w.proc.poll() is None for w in workers), "the workers rode out the restart"
        assert len(done_before) < len(ids), "Redis went away while jobs were left"
    finally:
        server.stop()


def test_the_cli_lists_and_retries_jobs_on_redis(on_redis, tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    huey, settings = on_redis
    result = jobs.always_fails("cli")
    store = _store(huey)
    [claimed] = store.claim(now=time.time(), owner="cli-test:1:1", lease_seconds=30,
                            want=1).claimed
    from tests.conformance.helpers import failure

    store.bury(claimed.id, 1, failure(), worker="cli-test:1:1", now=time.time(), reason="x")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_SETTINGS": str(settings)}

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "runner", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert result.id[-12:] in cli("jobs", "--state", "dead")
    cli("retry", result.id)
    assert store.get_job(result.id).state == "available"


def test_a_project_module_named_redis_does_not_stand_in_for_the_driver(on_redis, make_worker,
                                                                       tmp_path):
    # Given a project with a helper module of its own called redis.py, where the worker
    # starts (its directory goes first on the import path, for the project's tasks)
    (tmp_path / "redis.py").write_text("raise ImportError('the project\\'s own redis.py')\n")
    huey, settings = on_redis
    result = jobs.add(2, 3)
    # When the worker starts on Redis there
    worker = make_worker(settings=settings)
    # Then its backend still has the real driver, and the job runs
    assert result.get(blocking=True, timeout=30) == 5, worker.output()
    assert worker.terminate() == 0
