"""Firing a schedule slot: exactly once, however many schedulers race for it; overlap."""

from __future__ import annotations

import threading

from runner.readmodel.schedules import last_outcome
from runner.scheduling.definitions import registry
from runner.scheduling.scheduler import Scheduler
from runner.store.sqlite.schedules import FirePlan, SyncItem
from runner.store.states import JobState
from tests.conformance.helpers import T0, job

SLOT = T0 + 60


def _sync(store) -> None:  # noqa: ANN001 - a Store
    store.sync_schedules([SyncItem("nightly", "tests.jobs.add", "* * * * *", "UTC", "once",
                                   "allow", True, SLOT)], now=T0)


def _plan(expected: float = SLOT) -> FirePlan:
    return FirePlan("nightly", expected, SLOT + 60, [SLOT], [job(SLOT, schedule="nightly")],
                    "allow")


def test_a_due_slot_fires_once_and_the_schedule_moves_on(store):
    _sync(store)
    assert store.due_schedules(SLOT - 1) == []
    assert store.due_schedules(SLOT) == [("nightly", SLOT)]
    [result] = store.fire([_plan()], clock=lambda: SLOT + 0.1, queue_size=0)
    assert result.won and len(result.enqueued) == 1
    assert store.next_due() == SLOT + 60
    [again] = store.fire([_plan()], clock=lambda: SLOT + 0.2, queue_size=0)
    assert not again.won  # the compare-and-set on the old slot fails
    assert [r.slot for r in store.schedule_runs("nightly")] == [SLOT]


def test_two_schedulers_racing_for_a_slot_fire_it_exactly_once(store, another):
    _sync(store)
    schedulers = [store, another(), another(), another()]
    start = threading.Barrier(len(schedulers))
    results = []

    def race(handle) -> None:  # noqa: ANN001 - a Store
        plan = _plan()
        start.wait()
        results.extend(handle.fire([plan], clock=lambda: SLOT + 0.1, queue_size=0))

    threads = [threading.Thread(target=race, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(r.won for r in results) == 1
    assert len(store.schedule_runs("nightly")) == 1
    assert store.count_jobs() == 1
    assert store.list_schedules()[0].fired == 1


def test_a_paused_schedule_does_not_fire(store):
    _sync(store)
    assert store.set_paused("nightly", True, now=T0)
    assert store.due_schedules(SLOT) == []
    [result] = store.fire([_plan()], clock=lambda: SLOT, queue_size=0)
    assert not result.won and store.count_jobs() == 0


def test_a_slot_whose_unique_key_is_held_is_skipped_naming_the_holder(store):
    _sync(store)
    holder = job(T0, unique_key="nightly-report")
    store.enqueue([holder], now=T0)
    plan = FirePlan("nightly", SLOT, SLOT + 60, [SLOT],
                    [job(SLOT, schedule="nightly", unique_key="nightly-report")], "allow")
    [result] = store.fire([plan], clock=lambda: SLOT + 0.1, queue_size=0)
    assert result.won and result.enqueued == []
    assert result.skipped == [(SLOT, f"unique: job {holder.id} holds its key")]
    assert store.count_jobs() == 1
    [run] = store.schedule_runs("nightly")
    assert run.job_id is None and run.outcome == f"skipped: unique: job {holder.id} holds its key"


def test_a_scheduler_takes_back_its_schedules_that_another_sync_marked_orphaned(store):
    # Given "nightly" synced by a scheduler that defines it, then a sync by a process
    # that defines only "hourly" (it marks "nightly" orphaned: not fired)
    _sync(store)
    store.sync_schedules([SyncItem("hourly", "tests.jobs.add", "0 * * * *", "UTC", "once",
                                   "allow", True, T0 + 3600)], now=T0 + 1)
    assert store.get_schedule("nightly").orphaned
    assert store.due_schedules(SLOT) == []
    # When the first scheduler takes back what it defines
    assert store.adopt_schedules(["nightly", "hourly", "missing"], now=T0 + 2) == ["nightly"]
    # Then it is active again with its next fire time kept (the missed slot is due), and
    # a second look finds nothing to take back
    row = store.get_schedule("nightly")
    assert not row.orphaned and row.next_fire_at == SLOT
    assert store.due_schedules(SLOT) == [("nightly", SLOT)]
    assert store.next_due() == SLOT
    assert store.adopt_schedules(["nightly"], now=T0 + 3) == []
    assert store.adopt_schedules([], now=T0 + 3) == []
    assert not store.get_schedule("hourly").orphaned


def test_a_queue_one_schedule_keeps_one_run_waiting_behind_the_running_one(huey, store):
    # Given a */15 schedule with overlap="queue_one" whose first run is running
    import tests.sched_jobs  # noqa: F401 - the queue_one schedule

    scheduler = Scheduler(huey, huey.settings, definitions=[registry.get("one_at_a_time")])
    scheduler.sync(T0)
    first_slot = store.next_due()
    scheduler.tick(first_slot)
    [running] = huey.jobs.claim_due(1)
    # When two more slots come while it runs
    scheduler.tick(first_slot + 900)
    held_back = huey.jobs.claim_due(1)
    scheduler.tick(first_slot + 1800)
    # Then one run waits, and does not start beside the running one; the other slot is
    # skipped
    assert held_back == []
    states = sorted(j.state for j in store.list_jobs() if j.id != running.id)
    assert states == [JobState.AVAILABLE]
    assert [r.outcome for r in store.schedule_runs("one_at_a_time")] == [
        "enqueued", "enqueued", "skipped: overlap: a run is already waiting (queue_one)"]
    # and it starts once the running one has ended
    huey.jobs.ack_completed(running.id, running.attempt)
    huey.jobs.flush_acks()
    [waited] = huey.jobs.claim_due(1)
    assert waited.id != running.id


def test_a_catch_up_run_is_the_last_outcome_and_the_dropped_slots_the_last_skip(store):
    # Given a schedule back after downtime: misfire "once" drops two missed slots and
    # runs the latest
    _sync(store)
    late = SLOT + 180
    plan = FirePlan("nightly", SLOT, late + 60, [late], [job(late, schedule="nightly")],
                    "allow", dropped=2)
    [result] = store.fire([plan], clock=lambda: late + 0.5, queue_size=0)
    assert result.won and len(result.enqueued) == 1
    # Then the last outcome is the catch-up run's, and the drop is recorded as the last skip
    row = store.get_schedule("nightly")
    assert last_outcome(row) == JobState.AVAILABLE
    assert row.last_skip_reason == "2 missed slot(s) dropped by the misfire policy"
    assert row.skipped == 2
    # When the next slot is skipped (skip-next), Then that is the last outcome
    store.set_skip_next("nightly", now=late + 1)
    following = late + 60
    skipped = FirePlan("nightly", following, following + 60, [following],
                       [job(following, schedule="nightly")], "allow")
    store.fire([skipped], clock=lambda: following + 0.5, queue_size=0)
    assert last_outcome(store.get_schedule("nightly")) == "skipped: skip-next requested"
