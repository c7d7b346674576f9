"""A job's outcome and what follows from it are written together, or not at all."""

from __future__ import annotations

import sqlite3
import time

import pytest
from huey.exceptions import TaskException

from runner import queries
from runner.testing import drain
from runner.workers import recover_orphans
from tests import jobs
from tests.conftest import read_records, wait_for, write_settings


def locked_settings(tmp_path):
    path = write_settings(tmp_path, name="locked.toml")
    path.write_text(path.read_text().replace(
        "busy_timeout = 10", "busy_timeout = 0.2\nwrite_deadline = 1"))
    return path


def test_result_and_pipeline_step_survive_a_lock_held_past_write_deadline(
        huey, tmp_path, make_worker, record_file):
    make_worker(settings=locked_settings(tmp_path), TEST_RECORD_FILE=str(record_file))
    gate = tmp_path / "gate"
    pipeline = jobs.wait_for_file.s(str(gate), "forty-two").then(jobs.record_run)
    first, second = huey.enqueue(pipeline)
    db = huey.jobs.db
    wait_for(lambda: queries.get_job(db, first.id).state == "executing", message="job to start")

    blocker = sqlite3.connect(db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # every writer of the worker waits from now on
    try:
        gate.touch()  # the job returns while it cannot write its outcome
        # The lock outlasts write_deadline (1 s) three times over: every write the
        # worker tries in that span, its outcome's included, gives up.
        time.sleep(3)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert first.get(blocking=True, timeout=20) == "forty-two"
    assert second.get(blocking=True, timeout=20) == "forty-two"
    wait_for(lambda: queries.get_job(db, second.id).state == "completed",
             message="the pipeline step to complete")
    row = queries.get_job(db, first.id)
    assert (row.state, row.attempt, row.crashes) == ("completed", 1, 0)
    assert [line.split()[0] for line in read_records(record_file)] == ["forty-two"]


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
