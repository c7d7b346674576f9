"""runner.control: the one write API; bulk actions act on exactly the counted set, in
order, failed states unless the filter says."""

from __future__ import annotations

import pytest

from runner import control
from runner.errors import InvalidAction
from runner.store.factory import open_store
from runner.store.sqlite.queries import JobFilter
from runner.testing import drain
from tests import jobs
from tests.unit.test_layers import _graph


def test_bulk_retry_without_a_state_takes_failed_jobs_and_a_named_state_widens_it():
    assert control.bulk_states("retry", None) == ("dead", "retrying", "cancelled")
    assert control.bulk_states("retry", "completed") == ("completed",)
    assert control.bulk_states("retry", "failed") == ("retrying", "dead")
    assert control.bulk_states("discard", None) == control.DISCARDABLE
    assert control.bulk_states("cancel", "waiting") == ("available", "scheduled", "retrying")
    assert control.bulk_states("cancel", "dead") == ()


def test_a_bulk_plan_counts_exactly_and_leaves_jobs_added_after_it_alone(huey):
    dead = [jobs.fatal_fails().id for _ in range(5)]
    drain()
    plan = control.plan_bulk(huey.jobs.store, "retry", JobFilter(task="fatal_fails"))
    assert plan.count == 5 and not plan.unfiltered
    later = jobs.fatal_fails().id
    drain()  # the newest one dies after the count
    assert control.run_bulk(huey.jobs.store, plan, chunk=2) == 5
    assert {huey.jobs.store.get_job(j).state for j in dead} == {"available"}
    assert huey.jobs.store.get_job(later).state == "dead"


def test_a_bulk_action_skips_a_job_that_changed_state_since_the_count(huey):
    waiting = [jobs.add(i, i).id for i in range(3)]
    plan = control.plan_bulk(huey.jobs.store, "cancel", JobFilter(task="add"))
    assert plan.count == 3
    assert huey.run_one()  # a worker takes one meanwhile
    assert control.run_bulk(huey.jobs.store, plan) == 2
    states = sorted(huey.jobs.store.get_job(j).state for j in waiting)
    assert states == ["cancelled", "cancelled", "completed"]


def test_a_bulk_action_that_cannot_apply_to_the_filtered_state_is_refused(huey):
    with pytest.raises(InvalidAction, match="completed jobs cannot be cancelled"):
        control.plan_bulk(huey.jobs.store, "cancel", JobFilter(state="completed"))
    with pytest.raises(InvalidAction, match="unknown bulk action"):
        control.plan_bulk(huey.jobs.store, "delete", JobFilter())


def test_front_ends_write_only_through_runner_control():
    graph = _graph()
    below = ("runner.scheduling.control", "runner.events.replay")
    for module, targets in graph.items():
        if module.startswith(("tui", "runner.cli")):
            assert not [t for t in targets if t in below], module



def test_bulk_retry_without_a_state_never_reruns_completed_jobs(huey):
    done = [jobs.add(i, i).id for i in range(3)]
    drain()
    dead = [jobs.always_fails(str(i)).id for i in range(5)]
    drain(include_scheduled=True)
    store = huey.jobs.store
    plan = control.plan_bulk(store, "retry", JobFilter())
    assert plan.states == ("dead", "retrying", "cancelled") and plan.count == 5
    assert control.run_bulk(store, plan, chunk=2) == 5  # three transactions, none skipped
    assert {store.get_job(j).state for j in dead} == {"available"}
    assert {store.get_job(j).state for j in done} == {"completed"}


def test_bulk_leaves_jobs_added_after_the_count_alone(huey):
    first = [jobs.noop(i).id for i in range(3)]
    store = huey.jobs.store
    plan = control.plan_bulk(store, "discard", JobFilter(state="available"))
    later = jobs.noop(99).id
    assert control.run_bulk(store, plan) == 3
    assert {store.get_job(j).state for j in first} == {"cancelled"}
    assert store.get_job(later).state == "available"


def test_bulk_states_follow_the_named_state():
    assert control.bulk_states("retry", "completed") == ("completed",)
    assert control.bulk_states("retry", "failed") == ("retrying", "dead")
    assert control.bulk_states("retry", "available") == ()
    assert control.bulk_states("discard", None) == control.DISCARDABLE
    assert control.bulk_states("discard", "waiting") == ("available", "scheduled", "retrying")


def test_bulk_of_a_state_the_action_cannot_take_is_refused(huey):
    with pytest.raises(InvalidAction, match="executing jobs cannot be discarded"):
        control.plan_bulk(huey.jobs.store, "discard", JobFilter(state="executing"))


def test_bulk_counts_the_whole_set_without_a_cap(huey):
    store = huey.jobs.store
    ids = [jobs.noop(i).id for i in range(1203)]
    plan = control.plan_bulk(store, "discard", JobFilter(queue="default"))
    assert plan.count == 1203
    assert control.run_bulk(store, plan) == 1203
    assert open_store(huey.jobs.path, readonly=True).counts_by_state()["cancelled"] == len(ids)
