"""A job's revocation on every backend: a worker clears only the revocation it read.

huey clears a job's revocation after each attempt and as it uses up a one-time
revocation; the clear may wait for a database that did not answer. Another process
may revoke the job again meanwhile, and that newer revoke must stick.
"""

from __future__ import annotations

from runner import control
from runner.errors import DatabaseUnavailable
from runner.store.states import JobState
from runner.testing import drain
from tests import jobs

OUTAGE = DatabaseUnavailable("the connection was lost and not regained within 30s; "
                             "nothing was written")


def revoke_from_another_process(huey, another, job_id: str) -> None:
    """What ``revoke_by_id(job_id)`` writes, written by another process."""
    another().kv_put(f"r:{job_id}", huey.serializer.serialize((None, False)))


def test_a_revoke_issued_while_an_earlier_clear_waited_for_the_database_stops_the_retry(
        huey, store, another, monkeypatch):
    # Given a revocation of another job, so that every attempt reads and clears its own
    jobs.add(0, 0).revoke()
    # and a job whose first attempt failed while the database did not answer the clear
    # of its revocation, kept for a later write
    result = jobs.fails_with_a_long_backoff("x")
    runner_store = huey.jobs.store
    real_delete = runner_store.kv_delete
    down = [True]

    def kv_delete(*args, **kwargs):
        if down[0]:
            raise OUTAGE
        return real_delete(*args, **kwargs)

    monkeypatch.setattr(runner_store, "kv_delete", kv_delete)
    drain(huey)
    assert store.get_job(result.id).state == JobState.RETRYING
    # When another process revokes the job, then the database answers again and the
    # worker's next claim writes the clear it kept
    revoke_from_another_process(huey, another, result.id)
    down[0] = False
    control.retry_job(store, result.id)
    drain(huey)
    # Then the newer revoke stands: the retry is cancelled, not run (one failure only)
    row = store.get_job(result.id)
    assert (row.state, row.reason) == (JobState.CANCELLED, "revoked")
    assert [e.message for e in store.job_errors(result.id)] == ["always fails x"]
    assert huey.is_revoked(result.id)


def test_a_revoke_issued_while_a_worker_used_up_the_earlier_one_stops_the_next_run(
        huey, store, another, monkeypatch):
    # Given a job revoked for one run
    result = jobs.add(1, 2)
    result.revoke()
    # When another process revokes it again right after the worker read the one-time
    # revocation, before the worker cleared it
    runner_store = huey.jobs.store
    real_peek_many = runner_store.kv_peek_many
    revoked_again: list[str] = []

    def kv_peek_many(keys, **kwargs):
        found = real_peek_many(keys, **kwargs)
        if f"r:{result.id}" in found and not revoked_again:
            revoke_from_another_process(huey, another, result.id)
            revoked_again.append(result.id)
        return found

    monkeypatch.setattr(runner_store, "kv_peek_many", kv_peek_many)
    drain(huey)
    assert revoked_again and store.get_job(result.id).state == JobState.CANCELLED
    # Then the newer revoke stands: the job retried by hand is cancelled again, not run
    control.retry_job(store, result.id)
    drain(huey)
    row = store.get_job(result.id)
    assert (row.state, row.reason) == (JobState.CANCELLED, "revoked")
    assert huey.is_revoked(result.id)
