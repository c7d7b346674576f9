"""A running job whose lease another worker's recovery took: one warning saying what follows."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from runner.attempt import Attempt
from runner.config import Settings, WorkerSection
from runner.store.job_storage import JobStorage
from runner.worker.clock_check import ClockCheck
from runner.worker.lease_watch import LeaseWatch
from runner.worker.lifeline import Lifeline
from tests import jobs
from tests.conformance.conftest import BACKENDS
from tests.conformance.helpers import T0, job

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


# -- what a lifeline pass reads ---------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStorage]:
    with BACKENDS[request.param](tmp_path) as (store, _):
        settings = Settings(worker=replace(WorkerSection(), queue_type=request.param))
        jobs_storage = JobStorage(settings=settings, store=store)
        jobs_storage.owner = ME
        yield jobs_storage


def test_a_lifeline_pass_reads_no_job_and_no_clock_beside_its_heartbeat(storage):
    # Given a worker running a job, its clock measured at start (as the manager does)
    settings = storage.settings
    storage.store.enqueue([job(T0)], now=time.time())
    [claimed] = storage.claim_due(1)
    attempt = Attempt(claimed, started_at=time.time())
    storage.store.register(ME, concurrency=1, queues=(), now=time.time())
    clock = ClockCheck(storage, settings, ME)
    clock.measure()
    lifeline = Lifeline(storage, settings, ME, clock=clock,
                        leases=LeaseWatch(storage.store, ME, lambda: [attempt]))
    reads: list[str] = []
    for name in ("server_time", "list_jobs", "job_ids", "get_job", "job_errors"):
        original = getattr(storage.store, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            reads.append(_name)
            return _original(*args, **kwargs)

        setattr(storage.store, name, spy)
    # When the lifeline makes a pass
    lifeline.beat()
    # Then the heartbeat alone said what the lease watch and the clock check need
    assert reads == []
    if storage.store.server_time() is not None:
        assert clock.offset is not None and abs(clock.offset) < 1.0
