"""Which queues ``python -m runner queues`` and the dashboard list, and what "waiting" counts.

A queue named in ``[queues.NAME]`` is always listed. Any other queue is listed while it
has recent activity (a job completed or failed within the rate's window) or jobs still
in the table in a non-final state, so a queue that just drained its burst stays in view
with its rate. "waiting" is one count everywhere: the jobs ready to run now; jobs due
later (scheduled) and failed jobs waiting out a backoff (retrying) are counted apart.
"""

from __future__ import annotations

from dataclasses import replace

from runner.config import Settings
from runner.readmodel.queues import RATE_WINDOW, queues_view
from runner.sections import QueueSection
from runner.store.backend import Store
from runner.store.job_rows import Ack
from tests.conformance.helpers import OWNER, T0, failure, job

LEASE = 30.0


def claim_all(store: Store, now: float) -> dict[str, int]:
    result = store.claim(now=now, owner=OWNER, lease_seconds=LEASE, want=50)
    return {c.id: c.attempt for c in result.claimed}


def listed(store: Store, now: float, settings: Settings | None = None) -> dict[str, object]:
    view = queues_view(store, settings or Settings(), now)
    return {q.name: q for q in view.queues}


def test_a_queue_that_just_finished_its_jobs_stays_listed_with_its_rate(store):
    store.enqueue([job(queue="burst") for _ in range(3)], now=T0)
    store.complete([Ack(j, a, T0, T0 + 1) for j, a in claim_all(store, T0).items()])

    queues = listed(store, T0 + 2)
    assert "burst" in queues, list(queues)
    burst = queues["burst"]
    assert (burst.waiting, burst.scheduled, burst.running, burst.retrying, burst.dead) == (
        0, 0, 0, 0, 0)
    assert burst.per_minute == 3.0
    # Once its activity has left the window, an unconfigured empty queue goes away
    assert "burst" not in listed(store, T0 + 1 + RATE_WINDOW + 1)


def test_a_configured_queue_is_always_listed(store):
    settings = replace(Settings(), queues={"default": QueueSection(), "reports": QueueSection()})
    queues = listed(store, T0, settings)
    assert list(queues) == ["default", "reports"]
    assert (queues["reports"].waiting, queues["reports"].per_minute) == (0, 0.0)


def test_a_queue_whose_job_just_failed_stays_listed(store):
    # A failed attempt whose job was then discarded leaves nothing unfinished behind
    flaky = job(queue="flaky")
    store.enqueue([flaky], now=T0)
    claimed = claim_all(store, T0)
    store.bury(flaky.id, claimed[flaky.id], failure(), worker=OWNER, now=T0 + 1, reason="dead")
    assert store.discard_jobs([flaky.id], now=T0 + 2) == 1

    queues = listed(store, T0 + 3)
    assert "flaky" in queues, list(queues)
    assert (queues["flaky"].waiting, queues["flaky"].dead, queues["flaky"].per_minute) == (
        0, 0, 0.0)
    assert "flaky" not in listed(store, T0 + 1 + RATE_WINDOW + 1)


def test_a_queue_with_jobs_due_later_stays_listed(store):
    store.enqueue([job(T0 + 3600, queue="later")], now=T0)
    queues = listed(store, T0 + 2 * RATE_WINDOW)
    assert (queues["later"].waiting, queues["later"].scheduled) == (0, 1)



def test_waiting_is_the_jobs_ready_now_in_every_view(store):
    # Given in one queue: 2 jobs ready now, 1 due later, 1 retrying after a backoff
    flaky = job(queue="mail", max_attempts=3)
    store.enqueue([flaky], now=T0)
    claimed = claim_all(store, T0)
    store.retry(flaky.id, claimed[flaky.id], failure(), worker=OWNER, now=T0 + 1,
                run_at=T0 + 600, reason="retrying")
    store.enqueue([job(T0 - 5, queue="mail"), job(T0, queue="mail"),
                   job(T0 + 3600, queue="mail")], now=T0)
    now = T0 + 2

    # Then every view counts 2 waiting, and the others apart
    summary = store.summary(now)
    assert (summary.waiting, summary.scheduled, summary.retrying) == (2, 1, 1)
    mail = listed(store, now)["mail"]
    assert (mail.waiting, mail.scheduled, mail.retrying, mail.running) == (2, 1, 1, 0)
