"""What a user types to go to a time, read with an explicit clock."""

from __future__ import annotations

import datetime as dt

import pytest

from runner.errors import InvalidFilter
from tui.filters import parse_filter
from tui.timejump import parse_time

NOW = dt.datetime(2026, 1, 5, 9, 30).timestamp()  # local time


@pytest.mark.parametrize(("text", "expected"), [
    ("2h", NOW - 7200), ("90m ago", NOW - 5400), ("30s", NOW - 30), ("1d", NOW - 86400),
    ("08:15", dt.datetime(2026, 1, 5, 8, 15).timestamp()),
    ("2025-12-31 23:59", dt.datetime(2025, 12, 31, 23, 59).timestamp()),
    ("2025-12-31", dt.datetime(2025, 12, 31).timestamp()),
])
def test_times_a_user_types(text, expected):
    assert parse_time(text, NOW) == expected


def test_an_unreadable_time_names_the_forms_that_work():
    with pytest.raises(ValueError, match="use 14:05, 2026-01-05 09:30"):
        parse_time("last tuesday", NOW)


@pytest.mark.parametrize(("text", "problem"), [
    ("state:bogus", "no state 'bogus'"), ("state:", "'state:' needs a value"),
    ("queue:", "'queue:' needs a value")])
def test_a_bad_filter_is_refused_with_the_reason(text, problem):
    with pytest.raises(InvalidFilter, match=problem):
        parse_filter(text)


def test_free_text_may_hold_colons():
    assert parse_filter("host:1 state:failed").text == "host:1"
