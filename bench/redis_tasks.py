"""No-op tasks for the Redis benchmark: plain huey's ``RedisHuey`` and the runner on Redis.

Each run appends "<id> <start time>" to ``$BENCH_RECORD`` (see ``core_tasks``).
``$BENCH_HUEY_NAME`` names plain huey's queue (its keys) on ``$BENCH_REDIS_URL``.
"""

from __future__ import annotations

import os

from huey import RedisHuey

from bench.core_tasks import _record
from runner import task

plain = RedisHuey(os.environ.get("BENCH_HUEY_NAME", "bench"), results=False,
                  url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))


@plain.task()
def plain_noop(n: int) -> None:
    _record(n)


@task()  # the defaults a user gets: timeout 300 s, 3 retries
def runner_noop(n: int) -> None:
    _record(n)
