"""The JSON preview of a job's arguments kept on its row."""

from __future__ import annotations

import json

import pytest

from runner.arguments import preview_args


@pytest.mark.parametrize(("args", "kwargs"), [
    ((), {}),
    ((1, 2.5, "é", None, True), {"key": [1, {"nested": "x"}]}),
    ((float("nan"), b"bytes", object), {"when": 3}),
])
def test_preview_is_the_arguments_as_json_with_repr_for_the_rest(args, kwargs):
    expected = json.dumps({"args": list(args), "kwargs": kwargs}, default=repr)
    assert preview_args(args, kwargs) == expected


def test_a_circular_argument_is_previewed_by_repr():
    loop: list = [1]
    loop.append(loop)
    assert preview_args((loop,), {}) == "(([1, [...]],), {})"


def test_arguments_that_are_not_a_sequence_are_previewed_by_repr():
    assert preview_args(3, {}) == "(3, {})"  # huey's schedule(3) passes the bare value


def test_a_long_preview_is_cut_to_2000_characters():
    text = preview_args(("x" * 5000,), {})
    assert len(text) == 2000 and text.endswith("...")
