"""Tasks with flow limits, for the tests of limits across worker processes.

Kept apart from :mod:`tests.jobs` so that the other tests run the claim a
worker without limits uses.
"""

from __future__ import annotations

import os
import time

from runner import task
from tests.jobs import record


@task(retry_limit=0, concurrency=1)
def exclusive(label, seconds, answer=None):
    """At most one at a time anywhere: records its start and end (pid, wall clock)."""
    record(f"start {label} {os.getpid()} {time.time():.6f}")
    time.sleep(seconds)
    record(f"end {label} {os.getpid()} {time.time():.6f}")
    if answer == "fail":
        raise ValueError("fails as asked")
    return answer


@task(retry_limit=0, rate_limit="20/s")
def rated(n):
    """Started at most 20 times a second: records when and as which attempt."""
    from runner.runner_huey import current_job

    job = current_job()
    record(f"{n} {time.time():.6f} {job.attempt if job else 0}")
