"""A SQLite file copied to Redis with ``migrate-to`` is drained there by a real worker:
every job it held runs once, the one its dead worker left running included."""

from __future__ import annotations

import time

from runner.cli import main
from runner.registry import configure, get_huey
from runner.settings_loader import load_settings
from runner.store.redis import RedisStore
from tests import jobs
from tests.conftest import read_records, wait_for, wait_for_count
from tests.redis_support import REDIS_URL, new_prefix, redis_or_skip, redis_settings


def test_a_copied_file_is_drained_on_redis_once(huey, settings_file, tmp_path, record_file,
                                                make_worker):
    # Given a file with waiting jobs, one due in a moment, and one its worker left running
    redis_or_skip()
    waiting = [jobs.record_run(f"copied-{n}").id for n in range(20)]
    soon = jobs.record_run.schedule(("soon",), delay=1).id
    store = huey.jobs.store
    [left] = store.claim(now=time.time(), owner="gone-host:1:1", lease_seconds=30,
                         want=1).claimed
    ids = set(waiting) | {soon}
    prefix = new_prefix()
    url = f"{REDIS_URL}?prefix={prefix}"
    target = RedisStore(REDIS_URL, prefix=prefix)
    try:
        # When it is copied and a worker starts on Redis
        assert main(["--settings", str(settings_file), "migrate-to", url]) == 0
        settings = redis_settings(tmp_path, prefix)
        worker = make_worker(settings=settings)
        # Then each job runs exactly once, as its first attempt there
        wait_for_count(lambda: len(read_records(record_file)), len(ids))
        wait_for(lambda: target.counts_by_state().get("completed") == len(ids),
                 message="the copied jobs completed")
        runs = [line.split() for line in read_records(record_file)]
        assert sorted(r[1] for r in runs) == sorted(ids)
        assert {r[1]: r[2] for r in runs}[left.id] == "2"  # its first attempt was cut short

        # and a second copy, the worker still running, runs none of them again
        assert main(["--settings", str(settings_file), "migrate-to", url]) == 0
        configure(load_settings(settings, environ={}))
        assert jobs.record_run("after").get(blocking=True, timeout=30) == "after"
        assert len(read_records(record_file)) == len(ids) + 1
        assert worker.terminate() == 0
    finally:
        configure(load_settings(settings_file, environ={}))
        get_huey()
        target.delete_all()
        target.close()
