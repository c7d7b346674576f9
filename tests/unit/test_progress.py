"""runner.progress() inside a task is visible from other processes while the job runs."""

from __future__ import annotations

from runner import get_progress, progress
from runner.progress import Progress
from runner.testing import drain
from tests import jobs


def test_async_task_progress_is_throttled_but_the_last_value_is_written(huey):
    result = jobs.async_progress(500)
    drain()
    assert get_progress(result.id).done == 500


def test_progress_outside_a_job_is_a_no_op(huey):
    progress(1, 2, "nothing to record")
    assert get_progress(jobs.add(1, 1).id) is None


def test_a_progress_message_holding_undecodable_bytes_is_recorded_escaped(huey):
    result = jobs.reports_progress_on_an_undecodable_name()
    drain()
    assert get_progress(result.id) == Progress(1.0, 2.0, "caf\\udce9.txt")


def test_progress_from_code_an_async_job_runs_in_a_thread_is_recorded(huey):
    result = jobs.async_chatty_in_a_thread("p")
    drain()
    assert get_progress(result.id) == Progress(1.0, 1.0, "from a thread")
