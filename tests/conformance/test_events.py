"""Events: idempotency keys at emit, fan-out to handler jobs exactly once."""

from __future__ import annotations

import json

from runner.store.sqlite.events import EventStatus, NewEvent
from runner.store.sqlite.models import DISPATCH_TASK
from runner.store.states import JobState
from tests.conformance.helpers import T0, job


def _emit(store, event_id: str, key: str | None = None, now: float = T0) -> str:  # noqa: ANN001
    event = NewEvent(event_id, "order.paid", json.dumps({"order": 7}), key, "test")
    # A single event's own dispatch job shares its id (see runner.events.delivery).
    dispatch = job(now, task=DISPATCH_TASK, job_id=event_id)
    [written] = store.insert_events([event], [(dispatch, [event_id])], now=now,
                                    dedupe_window=60.0, deadline=5.0)
    return written


def test_an_idempotency_key_reused_within_the_window_returns_the_first_event(store):
    assert _emit(store, "ev-1", key="pay:7") == "ev-1"
    assert _emit(store, "ev-2", key="pay:7", now=T0 + 30) == "ev-1"
    assert store.count_events() == 1
    assert _emit(store, "ev-3", key="pay:7", now=T0 + 120) == "ev-3"  # the window passed
    assert _emit(store, "ev-4") == "ev-4"  # no key: never deduplicated


def test_fan_out_writes_each_handler_job_once_even_when_dispatched_twice(store):
    _emit(store, "ev-1")
    assert [e.id for e in store.pending_events(["ev-1"])] == ["ev-1"]
    handlers = [job(T0, task="tests.handlers.email", event_id="ev-1"),
                job(T0, task="tests.handlers.ledger", event_id="ev-1")]
    assert store.fan_out({"ev-1": handlers}, now=T0 + 1) == {"ev-1": 2}
    again = [job(T0, task="tests.handlers.email", event_id="ev-1")]
    assert store.fan_out({"ev-1": again}, now=T0 + 2) == {}  # its worker died after the commit
    event = store.get_event("ev-1")
    assert (event.status, event.handlers) == (EventStatus.DISPATCHED, 2)
    outcomes = store.handler_outcomes(["ev-1"])["ev-1"]
    assert [(o.handler, o.outcome, o.deliveries) for o in outcomes] == [
        ("tests.handlers.email", "pending", 1), ("tests.handlers.ledger", "pending", 1)]
    assert store.count_jobs() == 3  # the dispatch job and the two handler jobs


def test_an_event_no_handler_takes_is_kept_as_unhandled(store):
    _emit(store, "ev-1")
    assert store.fan_out({"ev-1": []}, now=T0 + 1) == {"ev-1": 0}
    assert store.count_unhandled() == 1
    assert [e.id for e in store.unhandled_events()] == ["ev-1"]


def test_an_event_swept_up_by_another_dispatch_settles_its_own_dispatch_job(store):
    _emit(store, "ev-1")
    store.claim(now=T0, owner="w:1:1", lease_seconds=30, want=1)  # ev-1's dispatch runs
    _emit(store, "ev-2", now=T0 + 5)  # no due dispatch job waits: it gets one of its own
    assert store.get_job("ev-2").state == JobState.AVAILABLE
    store.fan_out({"ev-1": [job(T0, task="h", event_id="ev-1")],
                   "ev-2": [job(T0, task="h", event_id="ev-2")]}, settle=["ev-2"], now=T0 + 6)
    assert store.get_job("ev-2").state == JobState.COMPLETED
    assert store.get_job("ev-1").state == JobState.EXECUTING  # the one doing the sweep
