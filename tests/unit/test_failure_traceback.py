"""A failed attempt's stored traceback starts at the task's own code, not at huey's and
the runner's frames that ran it (they are the same for every job)."""

from __future__ import annotations

from pathlib import Path

import runner
from runner.attempt import describe_failure
from runner.store.sqlite import queries
from runner.testing import drain
from tests import jobs


def _traceback(huey, job_id: str) -> str:
    (error, *_) = queries.job_errors(huey.jobs.db, job_id)
    return error.traceback


def test_a_sync_tasks_traceback_starts_at_the_task(huey):
    result = jobs.always_fails("t")
    drain(include_scheduled=True)
    text = _traceback(huey, result.id)
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "tests/jobs.py" in lines[1] and "in always_fails" in lines[1], text
    assert "huey/" not in text and "runner/" not in text, text
    assert lines[-1] == "ValueError: always fails t"


def test_an_async_tasks_traceback_starts_at_the_coroutine(huey):
    result = jobs.async_fails("t")
    drain(include_scheduled=True)
    text = _traceback(huey, result.id)
    lines = text.splitlines()
    assert "tests/jobs.py" in lines[1] and "in async_fails" in lines[1], text
    assert "asyncio/" not in text and "runner/" not in text, text
    assert lines[-1] == "ValueError: async fails t"


def _only_the_tasks_frames(text: str, function: str, last_line: str) -> list[str]:
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):", text
    assert "tests/jobs.py" in lines[1] and f"in {function}" in lines[1], text
    for machinery in ("huey/api.py", "runner/", "base_events.py", "During handling",
                      "direct cause"):
        assert machinery not in text, text
    assert lines[-1] == last_line, text
    return lines


def test_a_sync_timeouts_traceback_runs_from_the_task_to_where_it_was_interrupted(huey):
    result = jobs.spin_forever()
    drain(include_scheduled=True)
    lines = _only_the_tasks_frames(_traceback(huey, result.id), "spin_forever",
                                   "runner.errors.TaskTimeout: timeout 0.3s")
    assert lines[2].strip() == "while True:"


def test_an_async_timeouts_traceback_runs_from_the_coroutine_to_its_await(huey):
    result = jobs.sleep_async(5)
    drain(include_scheduled=True)
    text = _traceback(huey, result.id)
    _only_the_tasks_frames(text, "sleep_async", "runner.errors.TaskTimeout: timeout 0.3s")
    assert "await asyncio.sleep(seconds)" in text


def test_an_aborted_tasks_traceback_starts_at_the_task(huey):
    sync, coroutine = jobs.leaves_the_attempt("sys.exit"), jobs.async_leaves_the_attempt(
        "sys.exit")
    drain(include_scheduled=True)
    lines = _only_the_tasks_frames(_traceback(huey, sync.id), "leaves_the_attempt",
                                   "runner.errors.TaskAborted: SystemExit: 3")
    assert lines[2].strip() == "sys.exit(3)"
    _only_the_tasks_frames(_traceback(huey, coroutine.id), "async_leaves_the_attempt",
                           "runner.errors.TaskAborted: SystemExit: 4")


def test_a_failure_with_no_frame_outside_the_runner_keeps_every_frame():
    # Given an error raised and caught inside the runner's own code (a bug of the runner,
    # or a task of its own): no frame of a task to start at
    inside = str(Path(runner.__file__).parent / "example_machinery.py")
    space: dict = {}
    exec(compile("def fail():\n    raise ValueError('inside')\n\n"
                 "def catch():\n    try:\n        fail()\n"
                 "    except ValueError as exc:\n        return exc\n", inside, "exec"), space)
    # Then its traceback is kept whole
    text = describe_failure(space["catch"](), "error", None).traceback
    assert text.count(inside) == 2, text
