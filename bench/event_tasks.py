"""Event handlers the event benchmark's worker loads: each records when it started."""

from __future__ import annotations

import os
import time

from runner import event_handler


def _record(kind: str, data: dict) -> None:
    started = time.time()
    fd = os.open(os.environ["BENCH_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {data['seq']} {data['t']} {started}\n".encode())
    finally:
        os.close(fd)


@event_handler("bench.one", retry_limit=0)
def one(data):
    _record("one", data)


@event_handler("bench.three", retry_limit=0)
def three_a(data):
    _record("three", data)


@event_handler("bench.three", retry_limit=0)
def three_b(data):
    _record("three", data)


@event_handler("*.three", retry_limit=0)
def three_wild(data):
    _record("three", data)
