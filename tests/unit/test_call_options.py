"""Options given to one call (``priority=``, ``delay=``, ``eta=``, ``expires=``, ``timeout=``,
``retries=``, ...) are checked at enqueue, as the CLI checks its own: nothing is written."""

from __future__ import annotations

import datetime

import pytest

from runner import InvalidArgument, enqueue_many
from runner.store.sqlite import queries
from runner.testing import drain
from tests import jobs

SECONDS = "expected seconds between 0 and 3155760000 (100 years); nothing was written"
PAST_SECONDS = SECONDS.replace("between 0", "between -3155760000")
WHOLE = "expected a whole number between {} and 9223372036854775807; nothing was written"
LOWEST = -(2**63)


@pytest.mark.parametrize("option, value, said", [
    ("priority", 1.5, WHOLE.format(LOWEST)),
    ("priority", "high", WHOLE.format(LOWEST)),
    ("priority", 2**63, WHOLE.format(LOWEST)),
    ("priority", True, WHOLE.format(LOWEST)),
    ("retries", -1, WHOLE.format(0).replace("807;", "806;")),
    ("retries", 2.5, WHOLE.format(0).replace("807;", "806;")),
    ("retry_delay", -1, SECONDS),
    ("retry_delay", float("nan"), SECONDS),
    ("retry_backoff", -2, "expected a finite number >= 0; nothing was written"),
    ("timeout", float("inf"), SECONDS),
    ("timeout", "5", SECONDS),
    ("expires", -1, SECONDS.replace("years)", "years) or a datetime")),
    ("expires", "soon", SECONDS.replace("years)", "years) or a datetime")),
])
def test_a_bad_option_of_one_call_is_refused_and_nothing_is_written(huey, option, value, said):
    message = f"task 'add': {option} {value!r}: {said}"
    calls = {
        "call": lambda: jobs.add(1, 2, **{option: value}),
        "enqueue_many": lambda: enqueue_many([jobs.add.s(1, 1),
                                              jobs.add.s(1, 2, **{option: value})]),
        "schedule": lambda: jobs.add.schedule((1, 2), delay=5, **{option: value}),
        "pipeline step": lambda: huey.enqueue(
            jobs.noop.s(1).then(jobs.add, 2, **{option: value})),
    }
    for how, enqueue in calls.items():
        with pytest.raises(InvalidArgument) as raised:
            enqueue()
        assert str(raised.value).endswith(message), how
    assert queries.count_jobs(huey.jobs.db) == 0


@pytest.mark.parametrize("delay", [float("inf"), float("nan"), 1e12, -1e12, 10**20, "5"])
def test_a_delay_out_of_range_is_refused_in_the_clis_words(huey, delay):
    # Seconds up to 100 years either way: a negative one is a due time already passed
    message = f"task 'add': delay {delay!r}: {PAST_SECONDS}"
    for enqueue in (lambda: jobs.add.schedule((1, 2), delay=delay),
                    lambda: jobs.add.s(1, 2, delay=delay),
                    lambda: jobs.add(1, 2, delay=delay)):
        with pytest.raises(InvalidArgument) as raised:
            enqueue()
        assert str(raised.value) == message
    if not isinstance(delay, str):
        with pytest.raises(InvalidArgument, match="delay"):
            jobs.add.schedule(delay)  # huey's schedule(seconds): the delay given first
    assert queries.count_jobs(huey.jobs.db) == 0


def test_an_eta_that_is_not_a_datetime_is_refused(huey):
    with pytest.raises(InvalidArgument) as raised:
        jobs.add.schedule((1, 2), eta="tomorrow")
    assert str(raised.value) == ("task 'add': eta 'tomorrow': expected a datetime; nothing "
                                 "was written")
    assert queries.count_jobs(huey.jobs.db) == 0


def test_good_options_of_one_call_are_written_as_given(huey):
    due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    results = [
        jobs.add.schedule((1, 2), delay=0, priority=-(2**63)),
        jobs.add.schedule((1, 2), delay=datetime.timedelta(minutes=1), priority=7),
        jobs.add.schedule((1, 2), eta=due, retries=0, retry_delay=0.5, timeout=0),
        jobs.add.schedule((1, 2), delay=5, expires=datetime.timedelta(hours=1)),
        jobs.add.schedule((1, 2), delay=5, expires=due, retry_backoff=1.5),
    ]
    rows = [queries.get_job(huey.jobs.db, r.id) for r in results]
    assert [row.priority for row in rows[:2]] == [-(2**63), 7]
    assert [row.state for row in rows] == ["available"] + ["scheduled"] * 4


@pytest.mark.parametrize("delay", [-5, -0.1, datetime.timedelta(seconds=-5)])
def test_a_negative_delay_runs_the_job_at_once_as_in_huey(huey, delay):
    # What ``target - time.time()`` gives once the target has passed
    result = jobs.add.schedule((1, 2), delay=delay)
    assert queries.get_job(huey.jobs.db, result.id).state == "available"
    assert drain() == 1 and result.get() == 3
