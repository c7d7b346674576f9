"""No-op tasks for the PostgreSQL benchmark: plain huey's ``PostgresHuey`` and the runner's.

Each run appends "<id> <start time>" to ``$BENCH_RECORD`` (see bench.core_tasks).
Plain huey works in the schema named by ``$BENCH_PG_DSN``'s ``search_path``.
"""

from __future__ import annotations

import os
import time

from huey import PostgresHuey

from runner import task

plain = PostgresHuey("bench", dsn=os.environ.get("BENCH_PG_DSN", ""), results=False)
_fd: int | None = None


def _record(n: int) -> None:
    global _fd
    if _fd is None:
        _fd = os.open(os.environ["BENCH_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(_fd, f"{n} {time.time():.6f}\n".encode())


@plain.task()
def plain_pg_noop(n: int) -> None:
    _record(n)


@task()  # the defaults a user gets: timeout 300 s, 3 retries
def pg_noop(n: int) -> None:
    _record(n)
