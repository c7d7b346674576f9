"""huey's own API on the runner: huey.task(), .error() handlers, re-enqueueing, signals."""

from __future__ import annotations

import datetime

import pytest
from huey import signals as S

from runner import ConfigError, get_huey, task
from runner.store.sqlite import queries
from runner.task import RunnerTaskWrapper
from runner.testing import drain
from tests import jobs

calls: list[object] = []


@task(retry_limit=1, retry_delay=0, jitter=0)
def fails_twice() -> None:
    raise ValueError("boom")


@task(retry_limit=0)
def on_error(exc: BaseException) -> None:
    calls.append(repr(exc))


@task(retry_limit=1, retry_delay=60, jitter=0)
def fails_then_waits() -> None:
    raise ValueError("later")


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    calls.clear()


@pytest.fixture
def signals(huey):
    seen: list[str] = []

    def handler(signal: str, task: object, *args: object) -> None:
        seen.append(signal)

    huey.signal()(handler)
    yield seen
    huey.disconnect_signal(handler)


def row(huey, job_id):
    return queries.get_job(huey.jobs.db, job_id)


def test_huey_task_decorator_makes_a_runner_task_with_huey_option_names(huey):
    @huey.task(retries=2, retry_delay=0.01, retry_backoff=1, name="huey_style_add")
    def huey_style_add(a, b):
        return a + b

    assert isinstance(huey_style_add, RunnerTaskWrapper)
    result = huey_style_add(2, 3)
    assert row(huey, result.id).max_attempts == 3
    assert drain() == 1
    assert result.get() == 5
    assert huey_style_add.resolve().policy.retry_delay == 0.01


def test_huey_task_with_context_receives_its_task(huey):
    @huey.task(context=True, name="knows_its_id")
    def knows_its_id(task=None):
        return task.id

    result = knows_its_id()
    drain()
    assert result.get() == result.id


def test_huey_task_rejects_an_unknown_option(huey):
    with pytest.raises(TypeError, match="bogus"):
        huey.task(bogus=1)


def test_huey_periodic_task_is_refused_naming_scheduled_task(huey):
    from huey import crontab

    with pytest.raises(ConfigError, match=r"runner\.scheduled_task"):
        huey.periodic_task(crontab(minute="*"))


def test_error_handler_of_a_retried_task_runs_after_each_failed_attempt(huey):
    result = huey.enqueue(fails_twice.s().error(on_error))
    drain(include_scheduled=True, timeout=10)
    assert calls == ["ValueError('boom')", "ValueError('boom')"]
    assert row(huey, result.id).state == "dead"


def test_enqueueing_a_finished_task_object_runs_it_again_as_the_same_job(huey):
    step = jobs.add.s(1, 2)
    first = huey.enqueue(step)
    assert drain() == 1
    assert first.get() == 3
    again = huey.enqueue(step)
    assert again.id == step.id
    assert drain() == 1
    assert again.get() == 3
    job = row(huey, step.id)
    assert (job.state, job.attempt, job.max_attempts) == ("completed", 2, 2)


def test_enqueueing_a_waiting_task_object_again_runs_a_copy(huey):
    step = jobs.add.s(2, 2)
    first = huey.enqueue(step)
    second = huey.enqueue(step)
    assert first.id != second.id
    assert drain() == 2
    assert (first.get(), second.get()) == (4, 4)


def test_results_off_enqueue_returns_no_handle(huey):
    huey.results = False
    try:
        assert jobs.add(1, 1) is None
    finally:
        huey.results = True
    assert drain() == 1


def test_delayed_job_sends_enqueued_then_scheduled(huey, signals):
    jobs.add.schedule((1, 1), delay=60)
    assert signals == [S.SIGNAL_ENQUEUED, S.SIGNAL_SCHEDULED]


def test_retry_sends_enqueued_when_due_and_scheduled_when_delayed(huey, signals):
    fails_twice()
    drain()
    assert signals[:5] == [S.SIGNAL_ENQUEUED, S.SIGNAL_EXECUTING, S.SIGNAL_ERROR,
                           S.SIGNAL_RETRYING, S.SIGNAL_ENQUEUED]
    signals.clear()
    fails_then_waits()
    drain()
    assert signals == [S.SIGNAL_ENQUEUED, S.SIGNAL_EXECUTING, S.SIGNAL_ERROR,
                       S.SIGNAL_RETRYING, S.SIGNAL_SCHEDULED]


def test_retry_delay_given_for_one_call_wins_over_the_policy(huey):
    result = huey.enqueue(fails_twice.s(retry_delay=120))
    drain()
    job = row(huey, result.id)
    assert job.state == "retrying"
    due = datetime.datetime.fromtimestamp(job.run_at, datetime.UTC)
    assert due > datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=100)


def test_wrapper_options_read_none_until_enqueue(huey):
    # [tasks.NAME] in settings.toml must be able to win, so nothing is fixed at decoration.
    assert fails_twice.task_class.default_retries is None
    step = fails_twice.s()
    assert step.retries is None
    huey.enqueue(step)
    assert step.retries == 1
    assert get_huey() is huey


def test_huey_task_takes_the_unique_and_limit_options_of_runner_task(huey):
    @huey.task(unique=True, name="huey_unique")
    def huey_unique(n):
        return n

    @huey.task(unique_key=lambda user, n=0: f"user:{user}", unique_for=60, name="huey_keyed",
               concurrency=1, rate_limit="5/s")
    def huey_keyed(user, n=0):
        return n

    try:
        first, again, other = huey_unique(1), huey_unique(1), huey_unique(2)
        assert first.id == again.id != other.id
        assert huey_keyed("ann", 1).id == huey_keyed("ann", n=2).id != huey_keyed("bob").id
        assert queries.count_jobs(huey.jobs.db) == 4
        assert huey_keyed.unique.unique_for == 60
        assert (huey_keyed.flow.concurrency, str(huey_keyed.flow.rate)) == (1, "5/s burst 1")
        with pytest.raises(ConfigError, match="need unique=True"):
            huey.task(unique_for=5, name="lonely_unique")(lambda: None)
        with pytest.raises(ConfigError, match="concurrency must be"):
            huey.task(concurrency=0, name="no_slots")(lambda: None)
    finally:
        # The process's registry outlives the test: its limits would steer every later
        # test's claims through flow control.
        huey_unique.unregister()
        huey_keyed.unregister()


@pytest.mark.parametrize("make", [
    lambda: jobs.add.s(1, b=(2, "x")),
    lambda: jobs.add.s(1, 2).then(jobs.add, 3).then(jobs.noop),
    lambda: jobs.noop.s(datetime.datetime(2030, 1, 2)),
])
def test_a_single_enqueue_stores_the_payload_huey_would(huey, make):
    """The Message's fields are pickled as a plain tuple: the payload reads back as the
    very Message huey's own serialize_task writes, byte for byte once unpickled."""
    call = make()
    huey.enqueue(call)
    (data,) = [bytes(d) for (d,) in huey.jobs.store.db.query(
        "SELECT data FROM runner_job WHERE id = ?", (call.id,))]
    expected = huey.serialize_task(call)
    assert huey.serializer.deserialize(data) == huey.serializer.deserialize(expected)
    assert type(huey.serializer.deserialize(data)) is type(huey.serializer.deserialize(expected))
    assert huey.deserialize_task(data).id == call.id
