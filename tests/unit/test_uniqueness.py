"""Unique tasks: a duplicate call returns the existing job's Result and writes nothing."""

from __future__ import annotations

import pytest

from runner import enqueue_many, task
from runner.errors import ConfigError
from runner.store.sqlite import queries
from runner.testing import drain
from runner.uniqueness import unique_spec
from tests import jobs


def test_a_duplicate_call_returns_the_first_jobs_result(huey):
    first = jobs.unique_report(7)
    again = jobs.unique_report(7)
    other = jobs.unique_report(8)
    assert again.id == first.id != other.id
    assert queries.count_jobs(huey.jobs.db) == 2
    assert drain() == 2
    assert again.get() == 7
    third = jobs.unique_report(7)  # the first one finished: a new job
    assert third.id != first.id


def test_every_caller_of_a_unique_job_gets_its_result(huey):
    # Two callers of one key share a job: each one's get() reads the value, whichever
    # reads first (a result read once would answer the other None, as if returned)
    first = jobs.unique_report(9)
    again = jobs.unique_report(9)
    assert again.id == first.id
    assert drain() == 1
    assert again.get(blocking=True, timeout=5) == 9
    assert first.get(blocking=True, timeout=5) == 9
    assert huey.result(first.id) == 9  # kept until retention deletes it with the job


def test_one_call_written_positionally_by_keyword_or_with_its_defaults_is_one_job(huey):
    @task(retry_limit=0, unique=True)
    def notify(user, full=False):
        return user

    first = notify(11)
    assert notify(user=11).id == first.id
    assert notify(11, False).id == first.id
    assert notify(11, full=False).id == first.id
    assert notify(11, full=True).id != first.id
    assert list(notify.map([(11,)]))[0].id == first.id


def test_a_key_function_of_the_arguments_names_the_duplicates(huey):
    a = jobs.per_user("alice", 1)
    b = jobs.per_user("alice", 2)
    c = jobs.per_user("bob", 1)
    assert a.id == b.id != c.id


def test_map_and_enqueue_many_give_duplicates_the_existing_ids(huey):
    existing = jobs.unique_report(1)
    results = list(jobs.unique_report.map([1, 2, 2]))
    assert results[0].id == existing.id and results[1].id == results[2].id
    calls = enqueue_many([jobs.unique_report.s(2), jobs.unique_report.s(3)])
    assert calls[0].id == results[1].id
    assert queries.count_jobs(huey.jobs.db) == 3


def test_states_given_as_words_or_states_and_bad_options_are_refused():
    spec = unique_spec("t", unique=True, unique_key=None, unique_for=None,
                       unique_states=["waiting", "completed"])
    assert spec is not None and spec.states == ("available", "completed")
    with pytest.raises(ConfigError, match="unknown state 'done'"):
        unique_spec("t", unique=True, unique_key=None, unique_for=None, unique_states=["done"])
    with pytest.raises(ConfigError, match="unique_for must be"):
        unique_spec("t", unique=True, unique_key=None, unique_for=-1, unique_states=None)
    with pytest.raises(ConfigError, match="need unique=True"):
        @task(unique_for=10)
        def lonely(): ...
