"""Helpers for testing code that uses the runner.

Two ways to test a task-using application:

* :func:`immediate` runs every enqueued job inline, at the call, with results
  kept in memory: no database, no worker. Good for unit tests of callers.
* :func:`drain` runs, in the calling thread, every job that is due in the real
  database until none is left: the same storage, retries and outcomes as
  ``run.py``, deterministic, no subprocess. Good for integration tests.

Example::

    from runner import configure
    from runner.testing import drain

    def test_signup_creates_workspace(tmp_path):
        configure(database=tmp_path / "jobs.db")
        initialize_user_workspace(42)
        assert drain() == 1
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from runner.registry import get_huey
from runner.runner_huey import RunnerHuey


@contextmanager
def immediate(huey: RunnerHuey | None = None) -> Iterator[RunnerHuey]:
    """Run enqueued jobs inline within the block (huey's immediate mode)."""
    instance = huey or get_huey()
    before = instance.immediate
    instance.immediate = True
    try:
        yield instance
    finally:
        instance.immediate = before


def drain(huey: RunnerHuey | None = None, *, max_jobs: int = 10_000,
          include_scheduled: bool = False, timeout: float = 30.0) -> int:
    """Run due jobs in this thread until none is due; returns how many ran.

    Args:
        max_jobs: stop after this many (guards against a task that re-enqueues itself).
        include_scheduled: also wait for jobs due within ``timeout`` (retries with a
            delay, ``delay=`` jobs) instead of stopping at the first idle moment.
        timeout: the longest ``include_scheduled`` waits for future jobs.
    """
    instance = huey or get_huey()
    ran = 0
    deadline = time.monotonic() + timeout
    while ran < max_jobs:
        if instance.run_one():
            ran += 1
            continue
        if not include_scheduled or time.monotonic() >= deadline:
            break
        jobs = instance.jobs
        if jobs is None or not jobs.has_future_jobs():
            break
        time.sleep(0.01)
    return ran
