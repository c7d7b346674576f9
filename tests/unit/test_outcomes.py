"""Outcomes are written with their results and next steps, and only for the attempt they end."""

from __future__ import annotations

import threading

import pytest
from huey.exceptions import TaskException

from runner.store.sqlite import queries
from runner.store.sqlite.workers import recover_orphans
from runner.testing import drain
from tests import jobs


def test_failed_pipeline_step_stores_its_error_for_every_step_as_it_dies(huey):
    first, second = huey.enqueue(jobs.fatal_fails.s().then(jobs.record_run))
    drain()
    assert queries.get_job(huey.jobs.db, first.id).state == "dead"
    for result in (first, second):
        with pytest.raises(TaskException, match="cannot ever work"):
            result.get()
    assert huey.jobs.db.query("SELECT count(*) FROM runner_job")[0][0] == 1


def test_late_outcome_of_an_attempt_that_was_taken_back_is_not_written(huey):
    storage = huey.jobs
    result = jobs.add(1, 2)
    [stale] = storage.claim_due(1)
    # Its lease lapses (the worker stalled) and the job is claimed again.
    storage.db.write(lambda conn: conn.execute("UPDATE runner_job SET lease_expires_at=1"))
    recover_orphans(storage.db, crash_limit=0)
    storage.release_inflight(stale.id)
    [fresh] = storage.claim_due(1)
    assert (stale.attempt, fresh.attempt) == (1, 2)
    storage.ack_completed(stale.id, stale.attempt, results=[(stale.id, b"stale")])
    row = queries.get_job(storage.db, result.id)
    assert (row.state, row.attempt) == ("executing", 2)
    assert storage.has_data_for_key(result.id) is False
    storage.ack_completed(fresh.id, fresh.attempt,
                          results=[(fresh.id, huey.serializer.serialize(3))])
    assert queries.get_job(storage.db, result.id).state == "completed"
    assert result.get() == 3


def test_blocking_get_waits_past_the_error_of_an_attempt_that_is_retried(huey, tmp_path):
    result = jobs.fails_then_works(str(tmp_path / "count"), 2)
    worker = threading.Thread(target=drain, kwargs={"include_scheduled": True, "timeout": 10})
    worker.start()
    try:
        assert result.get(blocking=True, timeout=10) == "worked on attempt 3"
    finally:
        worker.join()


def test_non_blocking_get_reads_the_error_of_an_attempt_that_is_retried_as_huey_does(
        huey, tmp_path):
    result = huey.enqueue(jobs.fails_then_works.s(str(tmp_path / "count"), 99, retry_delay=60))
    assert drain() == 1  # the first attempt fails; the retry waits a minute
    assert queries.get_job(huey.jobs.db, result.id).state == "retrying"
    with pytest.raises(TaskException, match="attempt 1 fails"):
        result.get()
