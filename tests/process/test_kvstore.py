"""Revocations and results seen by a real worker process."""

from __future__ import annotations

import time

from runner import enqueue_many
from runner.store.sqlite import queries
from tests import jobs
from tests.conftest import run_short_jobs_first, wait_for, write_settings


def test_revoke_reaches_a_job_waiting_in_a_workers_prefetch_buffer(huey, make_worker, tmp_path,
                                                                   record_file):
    one_thread = write_settings(tmp_path, worker={"max_concurrent_tasks": 1, "prefetch": 2},
                                name="one-thread.toml")
    make_worker(settings=one_thread)
    run_short_jobs_first()  # it claims ahead only once its jobs read as short
    slow, quick = enqueue_many([jobs.sleep_then_record.s(1.0, "slow"),
                                jobs.record_run.s("quick")])

    def state(result):
        return queries.get_job(huey.jobs.db, result.id).state

    # Claimed together: the slow job runs, the quick one waits behind it in the buffer.
    wait_for(lambda: state(slow) == state(quick) == "executing", message="both claimed")
    quick.revoke()
    wait_for(lambda: state(quick) in ("cancelled", "completed"), message="the quick job")
    assert state(quick) == "cancelled"
    assert state(slow) == "completed"


def test_waiting_on_a_job_that_returned_none_answers_none_once_it_completes(huey, make_worker):
    # Given jobs whose task returns None (huey stores no result for them) and a worker
    results = [jobs.noop(i) for i in range(3)]
    make_worker()
    # When their callers wait for them with a timeout
    started = time.monotonic()
    # Then each gets None when its job completes, not a timeout at the end of the wait
    assert [r.get(blocking=True, timeout=20) for r in results] == [None, None, None]
    assert time.monotonic() - started < 10
    assert {queries.get_job(huey.jobs.db, r.id).state for r in results} == {"completed"}
