"""``[runner] serializer = "json"``: round trips, refused values, pickled payloads, switching."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from huey.exceptions import TaskException

from runner import configure
from runner.errors import SerializationError
from runner.serializers import dumps, loads
from runner.settings_loader import load_settings
from runner.store.sqlite import queries
from runner.testing import drain
from tests import jobs
from tests.conftest import write_settings
from tests.json_support import payloads, write_json_settings


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return write_json_settings(tmp_path)


@pytest.mark.parametrize("value", [
    None, True, 3, 2.5, "text", [1, [2]], (1, (2, "x")), {"a": (1,)}, {1: "int key"},
    {("a", 1): "tuple key"}, {"__tuple__": "looks like a tag"}, b"\x00\xff",
    datetime.datetime(2030, 1, 2, 3, 4, 5), datetime.timedelta(seconds=90)])
def test_json_round_trips_plain_data_with_its_types(value):
    assert loads(dumps(value)) == value
    assert type(loads(dumps(value))) is type(value)


def test_arguments_json_cannot_carry_are_refused_naming_the_argument(huey):
    with pytest.raises(SerializationError) as error:
        jobs.add(1, {1, 2})
    assert "argument 2 (set {1, 2})" in str(error.value)
    assert "JSON cannot carry set" in str(error.value)
    with pytest.raises(SerializationError, match="argument 'b' .*float nan"):
        jobs.add(a=1, b=float("nan"))
    assert queries.count_jobs(huey.jobs.db) == 0


def test_a_pickled_payload_is_not_loaded_but_buried_with_the_reason(huey, settings_file):
    pickled = write_settings(settings_file.parent, name="pickle.toml")
    configure(load_settings(pickled, environ={}))
    result = jobs.add(1, 2)
    assert payloads(huey.jobs.db)[0][:1] == b"\x80"
    configure(load_settings(settings_file, environ={}))
    drain()
    row = queries.get_job(huey.jobs.db, result.id)
    assert row.state == "dead"
    assert "payload is a pickle" in row.reason and 'serializer is "json"' in row.reason


def test_switching_back_to_pickle_still_reads_json_jobs(huey, settings_file):
    result = jobs.add(20, 22)
    configure(load_settings(write_settings(settings_file.parent, name="pickle.toml"),
                            environ={}))
    drain()
    assert result.get() == 42


def test_a_result_json_cannot_carry_fails_the_job_clearly(huey):
    result = jobs.make_set(3)
    drain()
    row = queries.get_job(huey.jobs.db, result.id)
    assert row.state == "dead", row
    assert "JSON cannot carry set" in (row.error_message or "")
    with pytest.raises(TaskException, match="cannot be stored"):
        result.get()
