"""Bulk actions: exactly the counted set, in order, failed states unless the filter says."""

from __future__ import annotations

import pytest

from runner import control as actions
from runner.errors import InvalidAction
from runner.store.db import Database
from runner.store.queries import JobFilter, counts_by_state, get_job
from runner.testing import drain
from tests import jobs


def test_bulk_retry_without_a_state_never_reruns_completed_jobs(huey):
    done = [jobs.add(i, i).id for i in range(3)]
    drain()
    dead = [jobs.always_fails(str(i)).id for i in range(5)]
    drain(include_scheduled=True)
    db = huey.jobs.db
    plan = actions.plan_bulk(db, "retry", JobFilter())
    assert plan.states == ("dead", "retrying", "cancelled") and plan.count == 5
    assert actions.run_bulk(db, plan, chunk=2) == 5  # three transactions, none skipped
    assert {get_job(db, j).state for j in dead} == {"available"}
    assert {get_job(db, j).state for j in done} == {"completed"}


def test_bulk_leaves_jobs_added_after_the_count_alone(huey):
    first = [jobs.noop(i).id for i in range(3)]
    db = huey.jobs.db
    plan = actions.plan_bulk(db, "discard", JobFilter(state="available"))
    later = jobs.noop(99).id
    assert actions.run_bulk(db, plan) == 3
    assert {get_job(db, j).state for j in first} == {"cancelled"}
    assert get_job(db, later).state == "available"


def test_bulk_states_follow_the_named_state():
    assert actions.bulk_states("retry", "completed") == ("completed",)
    assert actions.bulk_states("retry", "failed") == ("retrying", "dead")
    assert actions.bulk_states("retry", "available") == ()
    assert actions.bulk_states("discard", None) == actions.DISCARDABLE
    assert actions.bulk_states("discard", "waiting") == ("available", "scheduled", "retrying")


def test_bulk_of_a_state_the_action_cannot_take_is_refused(huey):
    with pytest.raises(InvalidAction, match="executing jobs cannot be discarded"):
        actions.plan_bulk(huey.jobs.db, "discard", JobFilter(state="executing"))


def test_bulk_counts_the_whole_set_without_a_cap(huey):
    db = huey.jobs.db
    ids = [jobs.noop(i).id for i in range(1203)]
    plan = actions.plan_bulk(db, "discard", JobFilter(queue="default"))
    assert plan.count == 1203
    assert actions.run_bulk(db, plan) == 1203
    assert counts_by_state(Database(huey.jobs.path, readonly=True))["cancelled"] == len(ids)
