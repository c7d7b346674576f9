"""The bound on one job's or one event's serialized payload (``[worker] max_payload_mb``).

A payload is written in the transaction that enqueues it: one of hundreds of
megabytes holds the database's write lock for seconds, and every other producer
waits behind it. Such a job should carry a reference to its data (a file path,
a row id, an object key), not the data. The bound is checked on the bytes
already serialized for the row, so checking it costs a ``len()``; nothing is
written past it.
"""

from __future__ import annotations

import sys

from runner.errors import InvalidArgument

MIB = 1024 * 1024


def payload_limit(max_payload_mb: float) -> int:
    """The most bytes one payload may take under ``max_payload_mb`` (0: no bound, as a
    size no payload reaches, so the check stays one comparison)."""
    return int(max_payload_mb * MIB) if max_payload_mb else sys.maxsize


def over_bound(what: str, size: int, max_payload_mb: float) -> str:
    """Why ``what`` (``task 'resize'``, ``schedule 'nightly'``), whose payload serialized
    to ``size`` bytes, is past ``max_payload_mb``, and what to pass instead."""
    shown = f"{size} bytes ({size / MIB:.1f} MiB)" if size >= MIB // 10 else f"{size} bytes"
    return (f"{what}: payload of {shown} is over [worker] max_payload_mb = {max_payload_mb:g}; "
            "pass a reference to the data (a file path, a row id, an object key) instead of "
            "the data itself")


def payload_too_large(what: str, size: int, max_payload_mb: float) -> InvalidArgument:
    """The refusal of ``what`` (``task 'resize'``, ``event 'user.signup'``), whose payload
    serialized to ``size`` bytes, past ``max_payload_mb``."""
    return InvalidArgument(f"{over_bound(what, size, max_payload_mb)}; nothing was written")
