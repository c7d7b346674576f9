"""``[worker] max_payload_mb``: one job's (or one event's) serialized payload has a bound.

A call over it is refused before anything is written, naming the task or event, the
size and the setting; a batch with one such item writes none of its items. The tests
set a bound of 1 MiB and pass 2 MiB: nothing of hundreds of megabytes is made.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from huey import signals as S

from runner import InvalidArgument, configure, emit, emit_many, enqueue_many
from runner.cli import main
from runner.store.states import JobState
from runner.testing import drain, immediate
from tests import event_handlers, jobs
from tests.conftest import read_records, write_settings

MIB = 1024 * 1024
#: Twice the bound the tests set.
OVER = b"x" * (2 * MIB)
#: How every refusal ends, after the size.
REFUSED = (r" is over \[worker\] max_payload_mb = 1; pass a reference to the data \(a file "
           r"path, a row id, an object key\) instead of the data itself; nothing was written$")


@pytest.fixture
def settings_file(tmp_path):
    return write_settings(tmp_path, worker={"max_payload_mb": 1})


def rows(huey) -> tuple[int, int]:
    """(jobs, events) in the database."""
    store = huey.jobs.store
    return store.count_jobs(), store.count_events()


def with_bound(huey, megabytes: float) -> None:
    settings = huey.settings
    configure(replace(settings, worker=replace(settings.worker, max_payload_mb=megabytes)))


@pytest.mark.parametrize("call", [
    lambda huey: jobs.noop(OVER),
    lambda huey: jobs.noop.schedule((OVER,), delay=60),
    lambda huey: huey.enqueue(jobs.noop.s(OVER)),
    lambda huey: huey.enqueue(jobs.noop.s(b"a").then(jobs.noop, OVER)),  # a later step's
], ids=["call", "schedule", "huey.enqueue", "pipeline"])
def test_a_call_over_the_bound_is_refused_naming_task_size_and_setting(huey, call):
    with pytest.raises(InvalidArgument) as refused:
        call(huey)
    message = str(refused.value)
    size = re.fullmatch(r"task 'noop': payload of (\d+) bytes \(2\.0 MiB\)" + REFUSED, message)
    assert size is not None, message
    assert 2 * MIB < int(size.group(1)) < 2 * MIB + 1024
    assert rows(huey) == (0, 0)


def test_a_call_at_the_bound_is_accepted_and_one_byte_more_is_refused(huey):
    # What a call costs beside its argument: options, id and task name, as stored
    overhead = len(huey.new_job(jobs.noop.s(b"x" * (MIB // 2))).data) - MIB // 2
    at_bound = jobs.noop.s(b"x" * (MIB - overhead))
    assert len(huey.new_job(at_bound).data) == MIB
    huey.enqueue(at_bound)
    with pytest.raises(InvalidArgument, match=rf"^task 'noop': payload of {MIB + 1} bytes"):
        jobs.noop(b"x" * (MIB - overhead + 1))
    assert rows(huey) == (1, 0)


def test_zero_lifts_the_bound(huey):
    with_bound(huey, 0)
    jobs.noop(OVER)
    emit("user.signup", {"blob": "x" * 2 * MIB})
    assert rows(huey) == (2, 1)  # the event's dispatch job beside the call


def test_under_immediate_a_call_over_the_bound_is_refused_and_runs_nothing(huey, record_file):
    # A test in immediate mode must fail where the same call in production is refused
    with immediate():
        with pytest.raises(InvalidArgument) as refused:
            jobs.record_run(OVER)
        assert re.fullmatch(r"task 'record_run': payload of \d+ bytes \(2\.0 MiB\)" + REFUSED,
                            str(refused.value)), str(refused.value)
        # A batch with one call over it runs none of its calls, and names it
        with pytest.raises(InvalidArgument, match=r"^enqueue_many item 2 of 2: task "
                                                  r"'record_run': payload of \d+ bytes"):
            enqueue_many([jobs.record_run.s("a"), jobs.record_run.s(OVER)])
        with pytest.raises(InvalidArgument, match=r"^map item 2 of 2: task 'record_run': "
                                                  r"payload of \d+ bytes"):
            jobs.record_run.map([("b",), (OVER,)])
        with pytest.raises(InvalidArgument, match=r"^event 'user.signup': payload of "):
            emit("user.signup", {"blob": "x" * 2 * MIB})
        assert jobs.add(b"x", b"y").get() == b"xy"  # a call under it runs as ever
    assert read_records(record_file) == []
    assert rows(huey) == (0, 0)


def test_under_immediate_zero_lifts_the_bound(huey):
    with_bound(huey, 0)
    with immediate():
        assert jobs.add(OVER, b"").get() == OVER


def test_a_map_with_an_item_over_the_bound_names_it_and_writes_nothing(huey):
    with pytest.raises(InvalidArgument) as refused:
        jobs.noop.map([(b"a",), (b"b",), (OVER,), (b"d",)], batch_size=1)
    assert re.fullmatch(r"map item 3 of 4: task 'noop': payload of \d+ bytes \(2\.0 MiB\)"
                        + REFUSED, str(refused.value)), str(refused.value)
    assert rows(huey) == (0, 0)


def test_a_map_heard_by_a_signal_receiver_names_the_item_alike(huey):
    heard = []

    @huey.signal(S.SIGNAL_ENQUEUED)
    def on_enqueued(signal, task):
        heard.append(task.id)

    try:
        with pytest.raises(InvalidArgument, match=r"^map item 2 of 2: task 'noop': payload"):
            jobs.noop.map([(b"a",), (OVER,)])
    finally:
        huey.disconnect_signal(on_enqueued)
    assert heard == [] and rows(huey) == (0, 0)


def test_enqueue_many_with_a_call_over_the_bound_names_it_and_writes_nothing(huey):
    with pytest.raises(InvalidArgument) as refused:
        enqueue_many([jobs.noop.s(b"a"), jobs.add.s(1, 2), jobs.noop.s(OVER)], batch_size=1)
    assert re.fullmatch(r"enqueue_many item 3 of 3: task 'noop': payload of \d+ bytes "
                        r"\(2\.0 MiB\)" + REFUSED, str(refused.value)), str(refused.value)
    assert rows(huey) == (0, 0)


def test_the_cli_enqueue_over_the_bound_exits_65_and_writes_nothing(huey, settings_file, capsys):
    argv = ["--settings", str(settings_file), "enqueue", "noop",
            "--args", json.dumps(["x" * 2 * MIB])]
    assert main(argv) == 65
    err = capsys.readouterr().err
    assert err.startswith("error: task 'noop': payload of ") and "max_payload_mb = 1" in err
    assert rows(huey) == (0, 0)


def test_an_emit_over_the_bound_is_refused_naming_event_size_and_setting(huey):
    with pytest.raises(InvalidArgument) as refused:
        emit("user.signup", {"blob": "x" * 2 * MIB})
    assert re.fullmatch(r"event 'user.signup': payload of 2097163 bytes \(2\.0 MiB\)"
                        + REFUSED, str(refused.value)), str(refused.value)
    assert rows(huey) == (0, 0)


def test_an_emit_at_the_bound_is_accepted_and_one_byte_more_is_refused(huey):
    wrapping = len('{"blob":""}')  # the event's data is stored as compact JSON
    emit("user.signup", {"blob": "x" * (MIB - wrapping)})
    with pytest.raises(InvalidArgument, match=rf"^event 'user.signup': payload of {MIB + 1} "):
        emit("user.signup", {"blob": "x" * (MIB - wrapping + 1)})
    assert rows(huey) == (1, 1)


def test_emit_many_with_an_event_over_the_bound_names_it_and_writes_nothing(huey):
    with pytest.raises(InvalidArgument) as refused:
        emit_many([("a.b", {}), {"name": "a.c", "data": {"blob": "x" * 2 * MIB}, "key": "k"}])
    # emit_many counts its items from 1, as map and enqueue_many do
    assert re.fullmatch(r"emit_many item 2 of 2: event 'a.c': payload of \d+ bytes \(2\.0 MiB\)"
                        + REFUSED, str(refused.value)), str(refused.value)
    assert rows(huey) == (0, 0)


def test_the_cli_emit_over_the_bound_exits_65_and_writes_nothing(huey, settings_file, capsys):
    argv = ["--settings", str(settings_file), "emit", "user.signup",
            "--data", json.dumps({"blob": "x" * 2 * MIB})]
    assert main(argv) == 65
    assert capsys.readouterr().err.startswith("error: event 'user.signup': payload of ")
    assert rows(huey) == (0, 0)


def test_a_pipeline_step_carrying_a_result_over_the_bound_is_still_written_and_run(huey):
    # The result (a set of 400,000 numbers, about 2 MB pickled) was never a caller's to
    # bound: the next step that carries it is written with the completion, not refused.
    steps = huey.enqueue(jobs.make_set.s(400_000).then(jobs.noop))
    assert drain(huey) == 2
    store = huey.jobs.store
    assert [store.get_job(r.id).state for r in steps._results] == [JobState.COMPLETED] * 2
    assert len(steps[0]) == 400_000


def test_an_event_accepted_before_the_bound_was_lowered_reaches_its_handler(
        huey, record_file):
    assert event_handlers.early is not None  # the handler of early.bird is registered
    with_bound(huey, 0)
    emit("early.bird", {"n": 7, "blob": "x" * 2 * MIB})
    with_bound(huey, 1)  # an operator lowers it while the event waits for its dispatch
    assert drain(huey) == 2  # the dispatch job, then the handler job it wrote
    assert [line.split()[:2] for line in read_records(record_file)] == [["early", "7"]]
