"""Enqueue, claim and outcomes through huey's API, run in-process with drain()."""

from __future__ import annotations

import datetime
import sqlite3
import threading
from dataclasses import replace

import pytest
from huey.exceptions import TaskException

from runner import SerializationError
from runner.errors import QueueFull
from runner.sections import QueueSection
from runner.store.sqlite import counters, queries
from runner.testing import drain, immediate
from tests import jobs
from tests.conftest import read_records


def job(huey, job_id):
    return queries.get_job(huey.jobs.db, job_id)


def test_enqueued_job_is_one_available_row_until_it_runs(huey):
    result = jobs.add(1, 2)
    row = job(huey, result.id)
    assert (row.state, row.task, row.queue, row.attempt) == ("available", "add", "default", 0)
    assert row.args == '{"args": [1, 2], "kwargs": {}}'
    assert drain() == 1
    assert result.get() == 3
    row = job(huey, result.id)
    assert (row.state, row.attempt) == ("completed", 1)
    assert row.finished_at >= row.started_at


def test_async_task_result(huey):
    result = jobs.async_add(2, 5)
    drain()
    assert result.get() == 7


def test_result_get_blocks_until_a_worker_thread_finishes(huey):
    result = jobs.add(20, 22)
    worker = threading.Thread(target=drain)
    worker.start()
    assert result.get(blocking=True, timeout=10) == 42
    worker.join()


def test_failing_job_retries_as_the_same_row_then_dies_with_every_traceback(huey, record_file):
    result = jobs.always_fails("a")
    drain(include_scheduled=True)
    row = job(huey, result.id)
    assert (row.state, row.attempt, row.failures, row.max_attempts) == ("dead", 3, 3, 3)
    assert "ValueError: always fails a" in row.last_error
    errors = queries.job_errors(huey.jobs.db, result.id)
    assert [e.attempt for e in errors] == [1, 2, 3]
    assert all("Traceback" in e.traceback for e in errors)
    assert row.first_failed_at <= row.last_failed_at
    assert read_records(record_file) == ["fail a"] * 3
    assert huey.jobs.db.query("SELECT count(*) FROM runner_job")[0][0] == 1
    with pytest.raises(TaskException):
        result.get()


def test_fatal_fails_at_once_without_retries(huey):
    result = jobs.fatal_fails()
    drain(include_scheduled=True)
    row = job(huey, result.id)
    assert (row.state, row.attempt, row.error_type) == ("dead", 1, "Fatal")


def test_no_retry_on_and_retry_on_categorise_errors(huey):
    no_retry = jobs.key_error()
    not_listed = jobs.type_error()
    drain(include_scheduled=True)
    assert (job(huey, no_retry.id).state, job(huey, no_retry.id).attempt) == ("dead", 1)
    assert (job(huey, not_listed.id).state, job(huey, not_listed.id).attempt) == ("dead", 1)


def test_retry_request_runs_again_without_using_the_retry_limit(huey):
    result = jobs.retry_twice("k1")
    drain(include_scheduled=True)
    assert result.get() == 3
    row = job(huey, result.id)
    assert (row.state, row.attempt) == ("completed", 3)


def test_a_requested_retry_leaves_the_retry_limit_whole_under_retry_on(huey):
    result = jobs.asks_a_retry_then_loses_its_connection("k2")
    drain(include_scheduled=True)
    row = job(huey, result.id)
    # The asked-for attempt, then the first try and the 2 retries of the connection error.
    assert (row.state, row.attempt, row.error_type) == ("dead", 4, "ConnectionError"), row
    kinds = [e.kind for e in queries.job_errors(huey.jobs.db, result.id)]
    assert kinds == ["retry", "error", "error", "error"]


def test_on_failure_fallback_gets_args_and_error_once_retries_are_exhausted(huey, record_file):
    jobs.fails_with_fallback(7)
    drain(include_scheduled=True)
    assert read_records(record_file) == ["fallback fails_with_fallback RuntimeError (7,)"]


def test_unserializable_argument_is_named_and_nothing_is_written(huey):
    with pytest.raises(SerializationError, match=r"argument 2 \(lock"):
        jobs.add(1, threading.Lock())
    with pytest.raises(SerializationError, match="argument 'b'"):
        jobs.add(1, b=lambda: 1)
    assert queries.count_jobs(huey.jobs.db) == 0


def test_a_result_pickle_cannot_carry_fails_the_job_once_with_the_reason(huey):
    result = jobs.returns_what_pickle_cannot_carry()
    drain(include_scheduled=True)
    row = job(huey, result.id)
    # Not retried: the same result would fail the same way (and did, without end).
    assert (row.state, row.attempt) == ("dead", 1), row
    assert row.error_type == "SerializationError"
    assert "cannot be stored" in row.reason and "local object" in row.reason
    with pytest.raises(TaskException, match="cannot be stored"):
        result.get()


def test_an_error_whose_str_and_repr_raise_is_retried_then_dead_as_any_error(huey):
    result = jobs.fails_with_an_unprintable_error()
    drain(include_scheduled=True)
    row = job(huey, result.id)
    assert (row.state, row.attempt, row.error_type) == ("dead", 2, "Unprintable"), row
    assert "Unprintable" in row.reason and "str() failed" in row.reason
    errors = queries.job_errors(huey.jobs.db, result.id)
    assert len(errors) == 2 and all("raise Unprintable" in e.traceback for e in errors)
    with pytest.raises(TaskException, match="Unprintable"):
        result.get()


def test_timeouts_are_real_for_sync_and_async_tasks(huey):
    spinning = jobs.spin_forever()
    sleeping = jobs.sleep_async(30)
    drain()
    for result in (spinning, sleeping):
        row = job(huey, result.id)
        assert row.state == "dead"
        assert row.error_type == "TaskTimeout"
        errors = queries.job_errors(huey.jobs.db, result.id)
        assert errors[-1].kind == "timeout"


def test_higher_priority_runs_first_and_delay_waits(huey, record_file):
    huey.enqueue(jobs.record_run.s("low", priority=0))
    huey.enqueue(jobs.record_run.s("high", priority=10))
    later = jobs.record_run.schedule(("later",), delay=3600)
    drain()
    assert [line.split()[0] for line in read_records(record_file)] == ["high", "low"]
    assert job(huey, later.id).state == "scheduled"


def test_eta_in_the_past_runs_now(huey):
    result = jobs.add.schedule((1, 1), eta=datetime.datetime.now() - datetime.timedelta(hours=1))
    assert drain() == 1
    assert result.get() == 2


def test_pipeline_then_enqueues_the_next_step_with_the_result(huey):
    pipeline = jobs.add.s(1, 2).then(jobs.add, 10)
    results = huey.enqueue(pipeline)
    drain()
    assert [r.get() for r in results] == [3, 13]


def test_revoked_job_is_cancelled_not_run(huey):
    result = jobs.add(1, 1)
    result.revoke()
    drain()
    row = job(huey, result.id)
    assert (row.state, row.reason) == ("cancelled", "revoked")


def test_expired_job_is_cancelled(huey):
    gone = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    result = jobs.add.s(1, 1, expires=gone)
    huey.enqueue(result)
    drain()
    assert job(huey, result.id).state == "cancelled"


def test_lock_task_refuses_a_second_holder(huey):
    from huey.exceptions import TaskLockedException

    lock = huey.lock_task("only-one")
    with lock:
        assert lock.is_locked()
        with pytest.raises(TaskLockedException), huey.lock_task("only-one"):
            pass
    assert not lock.is_locked()


def test_unknown_task_and_unreadable_payload_go_to_dead_with_a_reason(huey):
    good = jobs.add(1, 1)
    db_path = huey.jobs.db.path
    data = huey.jobs.db.query("SELECT data FROM runner_job WHERE id=?", (good.id,))[0][0]
    renamed = huey.serializer.deserialize(data)._replace(id="renamed", name="tests.jobs.gone")
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO runner_job (id, task, state, data, run_at, created_at) "
            "VALUES ('renamed', 'gone', 'available', ?, 0, 0)",
            (huey.serializer.serialize(renamed),))
        conn.execute(
            "INSERT INTO runner_job (id, task, state, data, run_at, created_at) "
            "VALUES ('garbage', 'x', 'available', x'00ff00', 0, 0)")
        counters.recount_waiting(conn)  # rows written by hand: the queue counts them too
    drain()
    assert good.get() == 2
    gone, garbage = job(huey, "renamed"), job(huey, "garbage")
    assert gone.state == "dead" and gone.reason.startswith("unknown task tests.jobs.gone: ")
    assert garbage.state == "dead" and garbage.reason.startswith("cannot read job")


def test_queue_size_bounds_waiting_jobs_and_writes_nothing_more(huey):
    from runner import configure

    configure(replace(huey.settings, worker=replace(huey.settings.worker, queue_size=2),
                      queues={"default": QueueSection(on_full="reject")}))
    jobs.add(1, 1)
    jobs.add(1, 2)
    with pytest.raises(QueueFull, match="queue 'default' is full"):
        jobs.add(1, 3)
    assert queries.count_jobs(huey.jobs.db) == 2


def test_immediate_mode_runs_inline_without_a_database(huey):
    with immediate():
        assert jobs.add(2, 2).get() == 4
        assert jobs.async_add(1, 2).get() == 3


def test_immediate_mode_refuses_the_calls_a_worker_would_never_get(huey, record_file):
    from runner import InvalidArgument, enqueue_many

    with immediate():
        # A call the function cannot take, as outside the block: refused, never run
        with pytest.raises(InvalidArgument, match=r"^task 'add': add\(a, b\) cannot take this "
                                                  r"call: too many positional arguments; "
                                                  r"nothing was written"):
            jobs.add(1, 2, 3)
        with pytest.raises(InvalidArgument, match=r"^task 'record_run': record_run\(label\) "
                                                  r"cannot take this call"):
            jobs.record_run(label="a", extra=1)
        # An option out of range
        with pytest.raises(InvalidArgument, match=r"^task 'record_run': priority 1.5"):
            jobs.record_run.schedule(("b",), delay=0, priority=1.5)
        # A batch with one such call runs none of its calls, and names it
        with pytest.raises(InvalidArgument, match=r"^enqueue_many item 2 of 2: task 'record_run'"):
            enqueue_many([jobs.record_run.s("c"), jobs.record_run.s("d", "e")])
        with pytest.raises(InvalidArgument, match=r"^map item 2 of 2: task 'record_run'"):
            jobs.record_run.map([("f",), ("g", "h")])
        # Arguments the serializer cannot carry, as an enqueue names them
        with pytest.raises(SerializationError, match=r"^task 'record_run': argument 1 "):
            jobs.record_run(threading.Lock())
        with pytest.raises(SerializationError, match=r"^enqueue_many item 2 of 2: task "
                                                     r"'record_run': argument 1 "):
            enqueue_many([jobs.record_run.s("i"), jobs.record_run.s(threading.Lock())])
        assert jobs.add(1, 2).get() == 3  # a call it can take runs as ever
    assert read_records(record_file) == []


def test_call_local_runs_inline(huey):
    assert jobs.add.call_local(3, 4) == 7
    assert jobs.async_add.call_local(3, 4) == 7
    assert queries.count_jobs(huey.jobs.db) == 0


def test_a_parameter_of_the_task_named_like_a_call_option_reaches_the_task(huey):
    from runner import task

    @task(retry_limit=0)
    def fetch(url, timeout=10, priority="normal"):
        return f"{url} {timeout} {priority}"

    # Given a task that takes its own timeout and priority, called with them
    result = fetch("http://x", timeout=30, priority="high")
    row = job(huey, result.id)
    # Then they are its arguments, not the job's timeout and priority
    assert row.priority == 0
    drain()
    assert result.get() == "http://x 30 high"
    # while schedule() still sets the job's own options
    later = fetch.schedule(("http://y",), {"timeout": 5}, delay=0, priority=3)
    assert job(huey, later.id).priority == 3
    drain()
    assert later.get() == "http://y 5 normal"


def test_a_call_option_the_task_does_not_take_stays_an_option(huey):
    result = jobs.add.s(1, 2, priority=4)
    assert result.priority == 4 and result.kwargs == {}


def test_a_call_the_task_cannot_take_is_refused_at_enqueue_writing_nothing(huey):
    from runner.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"task 'add'.*add\(a, b\).*too many positional"):
        jobs.add(1, 2, 3)
    with pytest.raises(InvalidArgument, match=r"unexpected keyword argument 'c'"):
        jobs.add.schedule((1, 2), {"c": 3}, delay=10)
    with pytest.raises(InvalidArgument, match=r"map item 2 of 2: task 'add'.*missing"):
        jobs.add.map([(1, 2), (1,)])
    assert huey.jobs.db.query("SELECT count(*) FROM runner_job")[0][0] == 0
    # A call it can take, by position, keyword or default, is written
    jobs.add(1, b=2)
    jobs.noop()
    jobs.add.map([(1, 2), (3, 4)])
    assert huey.jobs.db.query("SELECT count(*) FROM runner_job")[0][0] == 4
