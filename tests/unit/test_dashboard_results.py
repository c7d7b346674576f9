"""Stored results as the dashboard decodes them: plain data only, never application code."""

from __future__ import annotations

import datetime as dt
import json
import pickle

from runner.readmodel.results import decode_result


class Loud:
    """Unpickling this would write a file: the dashboard must never do it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.target, "w"))


def test_plain_data_reads_as_json():
    shown = decode_result(pickle.dumps({"total": 42, "items": [1, 2.5, "x"], "ok": True}))
    assert shown.decoded and json.loads(shown.text) == {"total": 42, "items": [1, 2.5, "x"],
                                                        "ok": True}
    when = decode_result(pickle.dumps(dt.datetime(2026, 1, 5, 9, 30)))
    assert when.decoded and "2026, 1, 5, 9, 30" in when.text


def test_json_results_read_as_json():
    shown = decode_result(b'{"a": [1, 2]}')
    assert shown.decoded and shown.value == {"a": [1, 2]}


def test_a_pickle_that_names_code_is_described_not_loaded(tmp_path):
    target = tmp_path / "written"
    shown = decode_result(pickle.dumps(Loud(str(target))))
    assert not shown.decoded and ".open" in shown.text
    assert not target.exists()


def test_garbage_is_described():
    shown = decode_result(b"\x80\x05garbage")
    assert not shown.decoded and "do not decode" in shown.text
