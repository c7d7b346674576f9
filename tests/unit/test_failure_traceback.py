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
