"""huey's key/value and introspection calls on the jobs database: revocations, locks, queues."""

from __future__ import annotations

import time

import pytest
from huey.exceptions import TaskLockedException

from runner import task
from runner.runner_huey import RunnerHuey
from runner.store.sqlite import queries
from runner.testing import drain
from tests import jobs
from tests.conftest import wait_for


@task(retry_limit=1, retry_delay=60, jitter=0, backoff=1)
def fails_then_waits_a_minute() -> None:
    raise ValueError("first attempt fails")


def test_revoke_after_a_claim_reads_revoked_and_restore_deletes_it(huey):
    jobs.add(1, 1)
    assert drain() == 1  # this process has claimed: its "no revocations" shortcut is armed
    result = jobs.add(2, 2)
    result.revoke()
    assert result.is_revoked()
    assert result.restore() is True
    assert not result.is_revoked()
    assert result.restore() is False
    assert drain() == 1
    assert result.get() == 4
    assert queries.get_job(huey.jobs.db, result.id).state == "completed"


def test_revoke_after_a_claim_cancels_the_job(huey):
    jobs.add(1, 1)
    drain()
    result = jobs.add(2, 2)
    result.revoke()
    drain()
    row = queries.get_job(huey.jobs.db, result.id)
    assert (row.state, row.reason) == ("cancelled", "revoked")


def test_revoke_from_another_process_is_seen_by_one_that_claimed(huey):
    jobs.add(1, 1)
    drain()
    result = jobs.add(2, 2)
    other = RunnerHuey("other", settings=huey.settings)
    try:
        other.revoke_by_id(result.id)
        assert huey.is_revoked(result.id)
        assert huey.restore_by_id(result.id) is True
        assert not other.is_revoked(result.id)
    finally:
        other.jobs.store.close()
        other.jobs.db.close()


def test_lock_with_a_ttl_is_held_until_it_expires(huey):
    lock = huey.lock_task("long", ttl=60)
    lock.acquire()
    assert lock.is_locked() and huey.is_locked("long")
    with pytest.raises(TaskLockedException):
        huey.lock_task("long").acquire()


def test_lock_with_a_ttl_reads_unlocked_once_it_expires(huey):
    huey.lock_task("short", ttl=0.05).acquire()
    wait_for(lambda: not huey.is_locked("short"), timeout=5, message="the lock to expire")
    assert huey.flush_locks("short") == set()  # nothing was held any more
    assert huey.lock_task("short", ttl=60).acquire()
    assert huey.is_locked("short")


def test_delayed_job_is_scheduled_not_pending_until_due(huey):
    later = jobs.add.schedule((1, 2), delay=60)
    now = jobs.add(3, 4)
    assert (huey.pending_count(), huey.scheduled_count(), len(huey)) == (1, 1, 1)
    assert [t.id for t in huey.pending()] == [now.id]
    assert [t.id for t in huey.scheduled()] == [later.id]


def test_retry_waiting_out_its_delay_is_scheduled_not_pending(huey):
    result = fails_then_waits_a_minute()
    assert drain() == 1
    assert queries.get_job(huey.jobs.db, result.id).state == "retrying"
    assert (huey.pending_count(), huey.scheduled_count()) == (0, 1)
    (waiting,) = huey.scheduled()
    assert (waiting.id, waiting.retries) == (result.id, 0)


def test_flush_schedule_cancels_only_future_jobs(huey):
    later = jobs.add.schedule((1, 2), delay=60)
    now = jobs.add(3, 4)
    huey.storage.flush_schedule()
    assert queries.get_job(huey.jobs.db, later.id).state == "cancelled"
    assert queries.get_job(huey.jobs.db, now.id).state == "available"


def test_get_on_a_completed_job_that_returned_none_is_none_at_once(huey):
    # Given a job whose task returned None: huey stores nothing for it
    result = jobs.noop()
    drain()
    assert huey.jobs.store.kv_peek(result.id, now=time.time()) is None
    # When its caller waits for it, Then the answer is None, without waiting out the timeout
    started = time.monotonic()
    assert result.get(blocking=True, timeout=10) is None
    assert time.monotonic() - started < 5


def test_get_on_a_job_that_has_not_run_still_times_out(huey):
    from huey.exceptions import ResultTimeout

    result = jobs.noop()
    with pytest.raises(ResultTimeout):
        result.get(blocking=True, timeout=0.2)
