"""The task decorator's options, checked when a function is decorated."""

from __future__ import annotations

import math
import re

import pytest

from runner.errors import ConfigError
from runner.task_options import check_options


@pytest.mark.parametrize("key", ["timeout", "retry_delay", "max_retry_delay", "jitter",
                                 "backoff"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_duration_that_is_not_a_finite_number_is_refused_naming_the_task(key, value):
    # nan passed the "< 0" check, and an infinite delay is a retry that never comes
    with pytest.raises(ConfigError, match=f"task 'report': {key} must be a finite number"):
        check_options("report", {key: value})


def test_finite_durations_and_none_are_accepted():
    check_options("report", {"timeout": 0, "retry_delay": 1.5, "max_retry_delay": None,
                             "jitter": 0.1, "backoff": 2})


_BOUNDS = [
    ("timeout", 1e10, "31536000 seconds (a year)"),
    ("retry_delay", 1e10, "31536000 seconds (a year)"),
    ("max_retry_delay", 1e10, "31536000 seconds (a year)"),
    ("retry_limit", 10**12, "1000000000"),
    ("backoff", 1e6, "100"),
    ("jitter", 1e6, "100"),
    ("priority", 2**63, str(2**63 - 1)),
    ("concurrency", 10**12, "1000000000"),
]


@pytest.mark.parametrize("option, value, bound, decorator", [
    (*bound, decorator) for bound in _BOUNDS for decorator in ("task", "event_handler", "huey")
    if not (decorator == "event_handler" and bound[0] == "concurrency")])  # handlers take none
def test_an_option_past_its_bound_is_refused_at_decoration_as_in_the_settings(
        option, value, bound, decorator):
    # @task(timeout=1e10) was accepted, though [tasks.NAME] timeout = 1e10 is refused: a
    # wait that long overflows the worker's timers.
    from runner import event_handler, get_huey, task

    if decorator == "huey" and option == "retry_limit":
        option = "retries"  # huey's name for it
    make = {"task": task, "huey": lambda **kw: get_huey().task(**kw),
            "event_handler": lambda **kw: event_handler("bounded.options", **kw)}[decorator]
    name = "retry_limit" if option == "retries" else option
    with pytest.raises(ConfigError, match=re.escape(f"'bounded': {name} must be at most "
                                                    f"{bound}, got {value!r}")):
        make(**{option: value})(bounded)


def test_a_priority_below_the_lowest_whole_number_a_store_keeps_is_refused():
    with pytest.raises(ConfigError, match=r"'report': priority must be at least "
                                          rf"{-(2**63 - 1)}, got {-(2**63)}"):
        check_options("report", {"priority": -(2**63)})


def test_options_at_their_bounds_are_accepted():
    check_options("report", {"timeout": 365 * 86400, "retry_limit": 10**9, "backoff": 100,
                             "priority": -(2**63 - 1)})


def bounded(x):
    return x
