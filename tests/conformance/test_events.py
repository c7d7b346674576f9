"""Events: idempotency keys at emit, fan-out to handler jobs exactly once, replay."""

from __future__ import annotations

import json
import threading

from runner.store.job_rows import Ack
from runner.store.sqlite.events import EventStatus, NewEvent
from runner.store.sqlite.models import DISPATCH_TASK
from runner.store.states import JobState
from tests.conformance.helpers import OWNER, T0, failure, job


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


def _dead_delivery(store) -> None:  # noqa: ANN001
    """ev-1 fanned out to the handlers "h" (its job died) and "ok" (its job completed)."""
    _emit(store, "ev-1")
    store.fan_out({"ev-1": [job(T0, task="h", event_id="ev-1", job_id="h-1"),
                            job(T0, task="ok", event_id="ev-1", job_id="ok-1")]}, now=T0)
    claimed = {c.id: c for c in store.claim(now=T0 + 1, owner=OWNER, lease_seconds=30,
                                            want=10).claimed}
    store.bury("h-1", claimed["h-1"].attempt, failure(), worker=OWNER, now=T0 + 2, reason="x")
    store.complete([Ack("ok-1", claimed["ok-1"].attempt, T0 + 1, T0 + 2)])


def test_a_replay_to_dead_handlers_delivers_only_to_those_whose_newest_job_is_dead(store):
    _dead_delivery(store)
    # A second replay that read the same outcomes (its clock behind): h has a live job now
    for now in (T0 + 10, T0 + 5):
        written = store.add_deliveries(
            "ev-1", [job(T0, task="h", event_id="ev-1"), job(T0, task="ok", event_id="ev-1")],
            now=now, only_dead=True)
        assert written == (1 if now == T0 + 10 else 0)
    assert store.get_event("ev-1").deliveries == 2
    outcomes = store.handler_outcomes(["ev-1"])["ev-1"]
    assert [(o.handler, o.outcome, o.deliveries) for o in outcomes] == [
        ("h", "pending", 2), ("ok", "completed", 1)]
    # Without only_dead a replay delivers to every handler it is given
    assert store.add_deliveries("ev-1", [job(T0, task="ok", event_id="ev-1")], now=T0 + 11) == 1


def test_replays_racing_to_a_dead_handler_deliver_to_it_once(store, another):
    _dead_delivery(store)
    handles = [store, another(), another(), another()]
    start = threading.Barrier(len(handles))
    written: list[int] = []

    def race(handle) -> None:  # noqa: ANN001 - a Store
        new = [job(T0, task="h", event_id="ev-1")]
        start.wait()
        written.append(handle.add_deliveries("ev-1", new, now=T0 + 10, only_dead=True))

    threads = [threading.Thread(target=race, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(written) == [0, 0, 0, 1]
    assert store.get_event("ev-1").deliveries == 2
    assert store.count_jobs() == 4  # the dispatch job, h-1, ok-1 and one new delivery


def test_a_replay_written_before_writes_nothing_again(store):
    _dead_delivery(store)
    new = [job(T0, task="h", event_id="ev-1", job_id="replay-h"),
           job(T0, task="ok", event_id="ev-1", job_id="replay-ok")]
    assert store.add_deliveries("ev-1", new, now=T0 + 10) == 2
    # Its worker died after the commit: the rerun's jobs have the same ids
    assert store.add_deliveries("ev-1", new, now=T0 + 20) == 0
    assert store.get_event("ev-1").deliveries == 2
