"""The outcome of an attempt does not depend on huey's revocation bookkeeping around it.

huey reads a job's revocation before running it and clears it afterwards. While
any revocation exists a worker does both for every job; a database that does not
answer those calls must neither fail a job that ran nor start one that may have
been revoked.
"""

from __future__ import annotations

import pytest

from runner.errors import DatabaseLocked, DatabaseUnavailable
from runner.store.sqlite import queries
from runner.testing import drain
from tests import jobs
from tests.conftest import read_records

OUTAGE = DatabaseUnavailable("jobs.db: the connection was lost and not regained within 30s; "
                             "nothing was written")


def job(huey, job_id):
    return queries.get_job(huey.jobs.db, job_id)


@pytest.fixture
def revocation_exists(huey):
    """Another job is revoked: every job the worker runs reads and clears its own."""
    revoked = jobs.add(0, 0)
    revoked.revoke()
    return revoked


def failing_until_restored(monkeypatch, store, name, error=OUTAGE):
    """Make ``store.<name>`` raise ``error`` until the returned ``restore()``; the calls
    made after it are recorded (their first argument)."""
    real = getattr(store, name)
    down = [True]
    calls: list[object] = []

    def call(*args, **kwargs):
        if down[0]:
            raise error
        calls.append(args[0])
        return real(*args, **kwargs)

    def restore() -> list[object]:
        down[0] = False
        return calls

    monkeypatch.setattr(store, name, call)
    return restore


def test_a_job_that_ran_completes_though_its_revocation_cannot_be_cleared(
        huey, revocation_exists, monkeypatch):
    result = jobs.add(1, 2)
    restore = failing_until_restored(monkeypatch, huey.jobs.store, "kv_delete")
    drain()
    row = job(huey, result.id)
    assert (row.state, row.attempt) == ("completed", 1)
    assert huey.jobs.store.job_errors(result.id) == []
    assert result.get() == 3
    # The revoked job read its one-time revocation, which it could not clear either.
    assert job(huey, revocation_exists.id).state == "cancelled"
    # Once the database answers, the next write clears the revocation key after all.
    deleted = restore()
    drain()
    assert f"r:{result.id}" in deleted


def test_a_failed_attempt_keeps_its_own_error_though_its_revocation_cannot_be_cleared(
        huey, revocation_exists, monkeypatch, record_file):
    # A retry that cannot come due during the drain, however slow the machine.
    result = jobs.fails_with_a_long_backoff("x")
    failing_until_restored(monkeypatch, huey.jobs.store, "kv_delete")
    drain()
    row = job(huey, result.id)
    assert (row.state, row.attempt) == ("retrying", 1)
    [error] = huey.jobs.store.job_errors(result.id)
    assert (error.kind, error.error_type, error.message) == ("error", "ValueError",
                                                             "always fails x")


@pytest.mark.parametrize("error", [OUTAGE, DatabaseLocked("jobs.db: database is locked")])
def test_a_job_whose_revocation_cannot_be_read_waits_then_runs_once(
        huey, revocation_exists, monkeypatch, record_file, error):
    result = jobs.record_run("ran")
    store = huey.jobs.store
    real = store.kv_peek_many
    reads = []

    def twice_unreachable(keys, *, now):
        reads.append(keys)
        if len(reads) <= 2:
            raise error
        return real(keys, now=now)

    monkeypatch.setattr(store, "kv_peek_many", twice_unreachable)
    drain()
    assert job(huey, revocation_exists.id).state == "cancelled"  # read, and still revoked
    row = job(huey, result.id)
    assert (row.state, row.attempt) == ("completed", 1)
    assert store.job_errors(result.id) == []
    assert read_records(record_file) == [f"ran {result.id} 1"]


def test_a_failed_attempt_whose_retry_cannot_be_written_is_not_buried(huey, monkeypatch):
    result = jobs.always_fails("x")
    failing_until_restored(monkeypatch, huey.jobs.store, "retry")
    drain()
    # Left executing: its lease lapses and recovery runs it again, its retries intact.
    row = job(huey, result.id)
    assert (row.state, row.attempt) == ("executing", 1)
