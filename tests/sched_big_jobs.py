"""A schedule whose arguments are 2 MiB, imported only by the worker subprocesses of the
test that starts it under a smaller ``[worker] max_payload_mb``."""

from __future__ import annotations

from runner import scheduled_task

BLOB = b"x" * (2 * 1024 * 1024)


@scheduled_task(name="nightly_blob", cron="0 3 * * *", retry_limit=0, args=(BLOB,))
def nightly_blob(blob: bytes) -> int:
    return len(blob)
