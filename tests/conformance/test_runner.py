"""The runner over the backend: what the worker decides, written through the store.

The runner (huey's consumer loop, run in this thread by ``drain``) works on the
database the backend fixture opened; outcomes are read back through the store.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from runner import InvalidArgument, configure, control, emit, enqueue_many
from runner.events.replay import REPLAY_TASK
from runner.settings_loader import load_settings
from runner.store.states import JobState
from runner.testing import drain
from tests import jobs
from tests.conformance.helpers import job
from tests.conftest import write_settings


def test_an_unknown_task_and_an_unreadable_payload_go_to_dead_with_a_reason(huey, store):
    message = huey.serializer.deserialize(huey.serialize_task(jobs.add.s(1, 1)))
    unknown = huey.serializer.serialize(message._replace(id="gone", name="tests.jobs.gone"))
    store.enqueue([replace(job(job_id="gone", task="tests.jobs.gone"), data=unknown),
                   replace(job(job_id="garbage"), data=b"\x00\xff\x00")], now=0)
    drain(huey)
    gone, garbage = store.get_job("gone"), store.get_job("garbage")
    # The unknown task is named as such, with what to do about it
    assert gone.state == JobState.DEAD
    assert gone.reason == ("unknown task tests.jobs.gone: no module of [runner] imports "
                           "defines it (add its module there, then retry the job)")
    assert [(e.kind, e.error_type, e.message) for e in store.job_errors("gone")] == [
        ("unknown_task", "UnknownTask", gone.reason)]
    assert garbage.state == JobState.DEAD and garbage.reason.startswith("cannot read job")
    assert [e.kind for e in store.job_errors("garbage")] == ["unreadable"]


def test_a_pipeline_step_of_an_unknown_task_is_named(huey, store):
    pipeline = jobs.add.s(1, 1).then(jobs.add, 2)
    message = huey.serializer.deserialize(huey.serialize_task(pipeline))
    step = message.on_complete._replace(name="tests.jobs.later")
    data = huey.serializer.serialize(message._replace(id="piped", on_complete=step))
    store.enqueue([replace(job(job_id="piped"), data=data)], now=0)
    drain(huey)
    assert store.get_job("piped").reason.startswith("unknown task tests.jobs.later: ")


def test_a_failing_task_is_dead_after_its_retry_limit(huey, store):
    result = jobs.always_fails("x")  # retry_limit=2: three attempts
    drain(huey, include_scheduled=True, timeout=10)
    row = store.get_job(result.id)
    assert (row.state, row.attempt, row.failures) == (JobState.DEAD, 3, 3)
    assert [e.attempt for e in store.job_errors(result.id)] == [1, 2, 3]


def test_an_error_message_holding_undecodable_bytes_is_recorded_and_the_job_retried(
        huey, store):
    # Given a task whose error names a file whose bytes are not UTF-8 (a lone surrogate)
    result = jobs.fails_on_an_undecodable_name()  # retry_limit=1: two attempts
    # When it runs until nothing is left
    drain(huey, include_scheduled=True, timeout=10)
    # Then both failures are recorded, the name escaped, and the job is dead, not left running
    row = store.get_job(result.id)
    assert (row.state, row.attempt, row.failures) == (JobState.DEAD, 2, 2)
    errors = store.job_errors(result.id)
    assert [e.attempt for e in errors] == [1, 2]
    assert all(e.message == "no such file: caf\\udce9.txt" for e in errors)
    assert "caf\\udce9.txt" in errors[-1].traceback


def test_map_writes_one_job_per_call_gives_duplicates_the_existing_id_and_each_runs_once(
        huey, store):
    existing = jobs.unique_report(1)
    results = jobs.unique_report.map([1, 2, 2, 3])
    assert [r.id for r in results][0] == existing.id
    assert results._results[1].id == results._results[2].id != existing.id
    added = jobs.add.map([(1, n) for n in range(130)], batch_size=50)  # 64-row statements
    rows = [store.get_job(r.id) for r in added]
    assert [(r.task, r.state, r.args) for r in rows[:2]] == [
        ("add", JobState.AVAILABLE, '{"args": [1, 0], "kwargs": {}}'),
        ("add", JobState.AVAILABLE, '{"args": [1, 1], "kwargs": {}}')]
    drain(huey)
    assert [r.get() for r in added] == [1 + n for n in range(130)]
    assert all(store.get_job(r.id).state == JobState.COMPLETED for r in results)


def test_a_payload_over_the_bound_is_refused_before_the_backend_writes_anything(huey, store):
    settings = huey.settings
    configure(replace(settings, worker=replace(settings.worker, max_payload_mb=1)))
    over = b"x" * (2 * 1024 * 1024)
    with pytest.raises(InvalidArgument, match=r"^task 'noop': payload of \d+ bytes"):
        jobs.noop(over)
    with pytest.raises(InvalidArgument, match=r"^map item 2 of 2: task 'noop': payload"):
        jobs.noop.map([(b"a",), (over,)])
    with pytest.raises(InvalidArgument, match=r"^enqueue_many item 1 of 2: task 'noop'"):
        enqueue_many([jobs.noop.s(over), jobs.noop.s(b"b")])
    with pytest.raises(InvalidArgument, match=r"^event 'user.signup': payload of \d+ bytes"):
        emit("user.signup", {"blob": over.decode()})
    assert (store.count_jobs(), store.count_events()) == (0, 0)
    jobs.noop(b"x" * (1024 * 1024 - 1024))  # under the bound: written as ever
    assert store.count_jobs() == 1


def test_run_now_and_replay_act_on_the_data_the_front_end_has_open(huey, store, another,
                                                                    settings_file):
    # Given an event delivered once, and a front end (the CLI, the dashboard) with a handle
    # of its own on the same data, reading the same settings
    import tests.event_handlers  # noqa: F401 - the handlers of the event
    import tests.sched_jobs  # noqa: F401 - the schedule run now

    event_id = emit("shop.order.placed", {"n": 1})
    drain(huey, include_scheduled=True, timeout=10)
    front, settings = another(), load_settings(settings_file, environ={})
    # When it runs a schedule now and replays the event
    run = control.run_schedule_now("quarter_hourly", store=front, settings=settings)
    replayed = control.replay_matching("shop.**", store=front, settings=settings)
    # Then both jobs are written where its data is, and nowhere else
    assert replayed.events == (event_id,)
    assert [store.get_job(j).task for j in (run, *replayed.jobs)] == [
        "quarter_hourly", REPLAY_TASK]


def test_a_dashboard_opened_on_a_database_alone_acts_on_that_database(huey, store, another,
                                                                      tmp_path):
    # Given a front end opened on the data alone (python -m tui --db URL: no settings), in a
    # process whose own runner points at another database
    import tests.sched_jobs  # noqa: F401 - the schedule run now

    front = another()
    (tmp_path / "elsewhere").mkdir()
    configure(load_settings(write_settings(tmp_path / "elsewhere"), environ={}))
    # When it runs a schedule now, Then the job is written where its data is
    run = control.run_schedule_now("quarter_hourly", store=front)
    assert store.get_job(run).task == "quarter_hourly"


def test_run_now_of_a_unique_schedule_whose_run_is_waiting_gives_that_run(huey, store):
    # Given a unique schedule run now once: its run waits
    import tests.sched_jobs  # noqa: F401 - the unique schedule

    first = control.run_schedule_now("unique_nightly", huey=huey)
    # When it is run now again
    again = control.run_now("unique_nightly", huey=huey)
    # Then nothing is written, and the answer is the waiting run, as a unique call's is
    assert (again.job_id, again.existing_state) == (first, JobState.AVAILABLE)
    assert control.run_schedule_now("unique_nightly", huey=huey) == first
    assert store.count_jobs() == 1
    row = store.get_schedule("unique_nightly")
    assert (row.last_job_id, row.fired) == (first, 1)
    assert [r.job_id for r in store.schedule_runs("unique_nightly")] == [first]


def test_a_full_queue_tells_ready_jobs_from_those_due_later_on_every_backend(huey, store):
    from runner import QueueFull
    from runner.sections import QueueSection

    settings = huey.settings
    configure(replace(settings, queues={"default": QueueSection(max_size=3, on_full="reject")}))
    jobs.add(1, 0)
    for n in range(2):
        jobs.add.schedule((1, n), delay=3600)
    with pytest.raises(QueueFull, match=r"3 jobs waiting \(1 ready, 2 scheduled or retrying\)"):
        jobs.add(1, 99)


def test_a_job_cancelled_while_retrying_answers_its_get_with_the_cancel(huey, store):
    from huey.exceptions import TaskException

    # Given a job whose first attempt failed (its error stored) and whose retry is not due
    result = jobs.fails_with_a_long_backoff("x")
    drain(huey)
    assert store.get_job(result.id).state == JobState.RETRYING
    # When it is cancelled before that retry runs
    assert control.cancel(result.id, by="ops@host", store=store) == JobState.RETRYING
    # Then a look and a blocking get both answer with the cancel, not the earlier attempt's
    # error, which the job will never raise again
    with pytest.raises(TaskException, match=r"JobCancelled\('cancelled by ops@host"):
        result.get(preserve=True)
    with pytest.raises(TaskException, match=r"JobCancelled\('cancelled by ops@host"):
        result.get(blocking=True, timeout=5)
