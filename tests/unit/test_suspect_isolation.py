"""A worker that finds a suspect it cannot take (another worker took it first, or its
queue is at its concurrency limit) holds nothing to drain: it does not stop claiming."""

from __future__ import annotations

import time

from runner.flow import FlowLimits
from runner.store.job_rows import Ack
from tests.conformance.helpers import job

GONE, OTHER = "gone-host:1:1", "other-host:2:1"


def test_an_idle_worker_that_could_not_take_a_suspect_claims_it_once_it_can(huey):
    store, storage = huey.jobs.store, huey.jobs
    now = time.time()
    # Given a suspect of queue slow (its worker died mid-run) ...
    suspect = job(now, queue="slow", max_attempts=3)
    store.enqueue([suspect], now=now)
    store.claim(now=now, owner=GONE, lease_seconds=0, want=1)  # its lease lapsed
    # ... while another worker runs the one job slow's concurrency limit allows
    running = job(now, queue="slow")
    store.enqueue([running], now=now)
    store.claim(now=now, owner=OTHER, lease_seconds=3600, want=1)
    assert store.recover_orphans(crash_limit=5, now=time.time()).requeued == [suspect.id]
    storage.limits_source = lambda settings: FlowLimits(queue_concurrency={"slow": 1})
    # When this worker, idle, claims: the limit is full, so it gets nothing
    assert storage.claim_due(1) == []
    # and the other worker's job ends, freeing the limit
    store.complete([Ack(running.id, 1, now, time.time())])
    # Then this worker's next claim takes the suspect, without waiting out isolation_limit
    assert [c.id for c in storage.claim_due(1)] == [suspect.id]
