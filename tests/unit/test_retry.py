"""Backoff, cap and jitter are pure functions of the policy, the retry number and chance."""

from __future__ import annotations

import pytest

from runner import ConfigError, Fatal
from runner.retry import RetryPolicy, backoff_delay


@pytest.mark.parametrize(("retry", "expected"), [(1, 2.0), (2, 6.0), (3, 18.0), (4, 54.0),
                                                 (5, 100.0), (12, 100.0)])
def test_delay_grows_by_backoff_and_stops_at_the_cap(retry, expected):
    policy = RetryPolicy(retry_delay=2, backoff=3, max_retry_delay=100, jitter=0)
    assert backoff_delay(policy, retry) == expected


def test_jitter_adds_up_to_its_fraction_and_never_passes_the_cap():
    policy = RetryPolicy(retry_delay=10, backoff=2, max_retry_delay=25, jitter=0.5)
    assert backoff_delay(policy, 1, rand=lambda: 0.0) == 10
    assert backoff_delay(policy, 1, rand=lambda: 1.0) == 15
    assert backoff_delay(policy, 1, rand=lambda: 0.5) == 12.5
    assert backoff_delay(policy, 2, rand=lambda: 1.0) == 25  # 20 * 1.5 capped


@pytest.mark.parametrize(("backoff", "retry"), [(2.0, 2000), (100.0, 200), (1e200, 3)])
def test_a_delay_past_what_a_float_holds_is_the_cap(backoff, retry):
    # backoff ** retries overflows long before a task of many retries runs out of them
    policy = RetryPolicy(retry_delay=1, backoff=backoff, max_retry_delay=3600, jitter=0.1)
    assert backoff_delay(policy, retry, rand=lambda: 1.0) == 3600


def test_retry_numbers_start_at_one():
    with pytest.raises(ValueError):
        backoff_delay(RetryPolicy(), 0)


def test_error_categories_decide_what_is_retried():
    default = RetryPolicy()
    assert default.should_retry(ValueError()) and not default.should_retry(Fatal())
    only_io = RetryPolicy(retry_on=(OSError,))
    assert only_io.should_retry(ConnectionError()) and not only_io.should_retry(ValueError())
    never_key = RetryPolicy(no_retry_on=(KeyError,))
    assert not never_key.should_retry(KeyError()) and never_key.should_retry(ValueError())


def test_retried_job_waits_its_backoff_delay(huey):
    import time

    from runner.store import queries
    from runner.testing import drain
    from tests import jobs

    # retry_delay 30, jitter 0: long enough that a slow machine cannot make the retry
    # due within the drain (it would then run it too).
    result = jobs.fails_with_a_long_backoff("timing")
    before = time.time()
    drain()  # first attempt only: the retry is not due yet
    row = queries.get_job(huey.jobs.db, result.id)
    assert (row.state, row.attempt) == ("retrying", 1)
    assert before + 30 <= row.run_at <= time.time() + 30


@pytest.mark.parametrize("option", ["retry_on", "no_retry_on"])
@pytest.mark.parametrize("value", ["ValueError", (ValueError, "KeyError"), 5, int, [ValueError]])
@pytest.mark.parametrize("decorator", ["task", "event_handler", "huey"])
def test_a_retry_on_that_is_not_exception_classes_is_refused_at_decoration(
        option, value, decorator):
    # retry_on="ValueError" used to be accepted, then every failure of the job was
    # replaced by a TypeError from isinstance() in the worker.
    from runner import event_handler, get_huey, task

    make = {"task": task, "huey": lambda **kw: get_huey().task(**kw),
            "event_handler": lambda **kw: event_handler("bad.policy", **kw)}[decorator]
    with pytest.raises(ConfigError, match=rf"'bad_policy': {option} must be an exception "
                                          r"class or a tuple of them, got "):
        make(**{option: value})(bad_policy)


def test_an_on_failure_that_cannot_be_called_is_refused_at_decoration():
    from runner import task

    with pytest.raises(ConfigError, match=r"'bad_policy': on_failure must be a function or a "
                                          r"task, got 5"):
        task(on_failure=5)(bad_policy)


def bad_policy(x):
    raise ValueError(x)
