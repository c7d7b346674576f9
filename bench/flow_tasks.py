"""The flow-control benchmark's task: a no-op that records "<id> <start time>".

Counts come from what the task recorded (every id exactly once), never from an
empty queue.
"""

from __future__ import annotations

import os
import time

from runner import task

_fd: int | None = None


@task()  # the defaults a user gets: timeout 300 s, 3 retries
def flow_noop(n: int) -> None:
    global _fd
    if _fd is None:
        _fd = os.open(os.environ["BENCH_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(_fd, f"{n} {time.time():.6f}\n".encode())
