"""A running job whose lease another worker's recovery took: one warning saying what follows."""

from __future__ import annotations

import logging
import time

from runner.attempt import Attempt
from runner.worker.lease_watch import LeaseWatch
from tests import jobs

ME, OTHER = "host-a:1:1", "host-b:2:1"


def running_here(huey):
    """A job this worker claimed and runs, as its worker thread sees it; and when."""
    result = jobs.add(1, 2)
    now = time.time()
    [claimed] = huey.jobs.store.claim(now=now, owner=ME, lease_seconds=30, want=1).claimed
    assert claimed.id == result.id
    return Attempt(claimed, started_at=now), now


def test_a_lease_that_is_held_says_nothing(huey, caplog):
    attempt, _ = running_here(huey)
    assert LeaseWatch(huey.jobs.store, ME, lambda: [attempt]).check() == []
    assert "lost the lease" not in caplog.text


def test_a_job_requeued_by_a_recovery_is_told_once_with_its_outcome_still_counting(huey,
                                                                                   caplog):
    # Given a running job whose lease expired and which another worker's recovery requeued
    attempt, now = running_here(huey)
    store = huey.jobs.store
    assert store.recover_orphans(crash_limit=3, me=OTHER, now=now + 31).requeued == [
        attempt.claimed.id]
    watch = LeaseWatch(store, ME, lambda: [attempt])
    # When the worker looks after its heartbeat
    with caplog.at_level(logging.WARNING, logger="runner.worker.lease_watch"):
        assert watch.check() == [attempt.claimed.id]
        assert watch.check() == []  # told once
    # Then the warning names the job, its task, and that the outcome counts until a claim
    [record] = [r for r in caplog.records if "lost the lease" in r.getMessage()]
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert f"job {attempt.claimed.id} (add, attempt 1)" in message, message
    assert "it was requeued (worker died; requeued)" in message, message
    assert "its outcome is written if it ends before a worker claims the job again" in message


def test_an_attempt_settling_its_own_outcome_is_not_a_lost_lease(huey, caplog):
    attempt, now = running_here(huey)
    huey.jobs.store.recover_orphans(crash_limit=3, me=OTHER, now=now + 31)
    attempt.settling = True  # its thread writes the outcome now
    assert LeaseWatch(huey.jobs.store, ME, lambda: [attempt]).check() == []
