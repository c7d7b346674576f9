"""The task decorator's options, checked when a function is decorated."""

from __future__ import annotations

import math

import pytest

from runner.errors import ConfigError
from runner.task import check_options


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
