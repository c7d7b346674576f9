"""No-op tasks for the core benchmark, defined for plain huey and for the runner.

Each run appends "<id> <start time>" to ``$BENCH_RECORD`` so counts come from
what the tasks recorded (every id exactly once), never from an empty queue.
"""

from __future__ import annotations

import os
import time

from huey import SqliteHuey

from runner import task

plain = SqliteHuey("bench", filename=os.environ.get("BENCH_HUEY_DB", "bench-huey.db"),
                   results=False)
_fd: int | None = None


def _record(n: int) -> None:
    global _fd
    if _fd is None:
        _fd = os.open(os.environ["BENCH_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(_fd, f"{n} {time.time():.6f}\n".encode())


@plain.task()
def plain_noop(n: int) -> None:
    _record(n)


@task()  # the defaults a user gets: timeout 300 s, 3 retries
def runner_noop(n: int) -> None:
    _record(n)
