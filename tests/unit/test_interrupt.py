"""Stopping a running attempt from another thread: the Interrupt behind cancelling a running job."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from runner import execution
from runner.errors import JobCancelled
from runner.execution import Interrupt, run_coroutine, run_sync


def request_when(started: threading.Event, interrupt: Interrupt) -> threading.Thread:
    def go() -> None:
        started.wait(10)
        interrupt.request("alice")

    thread = threading.Thread(target=go)
    thread.start()
    return thread


def test_a_coroutine_is_cancelled_at_its_current_await():
    interrupt, started, reached = Interrupt(), threading.Event(), []

    async def job():
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            reached.append("cleanup ran")

    thread = request_when(started, interrupt)
    begun = time.monotonic()
    with pytest.raises(JobCancelled, match="cancelled by alice while running"):
        run_coroutine(job, timeout=None, interrupt=interrupt)
    thread.join()
    assert time.monotonic() - begun < 5 and reached == ["cleanup ran"]


def test_cooperative_code_sees_the_request_and_returns():
    interrupt, started = Interrupt(), threading.Event()

    def job():
        started.set()
        deadline = time.monotonic() + 30
        while not interrupt.requested and time.monotonic() < deadline:
            time.sleep(0.005)
        return "stopped"

    thread = request_when(started, interrupt)
    assert run_sync(job, (), {}, None, interrupt) == "stopped"
    thread.join()


def spin(started: threading.Event) -> str:
    """Code that never looks at its interrupt: a CPU loop of up to 30 s."""
    started.set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sum(range(50))
    return "ran to the end"


def test_code_that_never_looks_is_interrupted_after_the_grace(monkeypatch):
    monkeypatch.setattr(execution, "CANCEL_GRACE", 0.05)
    interrupt, started = Interrupt(), threading.Event()

    thread = request_when(started, interrupt)
    begun = time.monotonic()
    with pytest.raises(JobCancelled):
        run_sync(spin, (started,), {}, 10, interrupt)
    thread.join()
    assert time.monotonic() - begun < 5


def test_a_coroutine_that_never_awaits_is_interrupted_after_the_grace(monkeypatch):
    monkeypatch.setattr(execution, "LOOP_GRACE", 0.05)
    interrupt, started = Interrupt(), threading.Event()

    async def job():  # a CPU loop, or blocking code, in an async def
        return spin(started)

    thread = request_when(started, interrupt)
    begun = time.monotonic()
    with pytest.raises(JobCancelled, match="cancelled by alice while running"):
        run_coroutine(job, timeout=None, interrupt=interrupt)
    thread.join()
    assert time.monotonic() - begun < 5
    assert run_coroutine(lambda: asyncio.sleep(0.1, "next"), timeout=5) == "next"


def test_an_attempt_that_ends_waits_for_a_stop_under_way():
    interrupt, entered, stopped = Interrupt(), threading.Event(), []

    def stop():  # what it arms must be there for the ending attempt to disarm
        entered.set()
        time.sleep(0.2)
        stopped.append("armed")

    interrupt.bind(stop)
    thread = threading.Thread(target=interrupt.request, args=("dave",))
    thread.start()
    assert entered.wait(10)
    interrupt.unbind()
    assert stopped == ["armed"]
    thread.join()


def test_a_request_before_the_start_stops_it_at_once_and_one_after_the_end_does_nothing():
    early = Interrupt()
    early.request("bob")

    async def job():
        await asyncio.sleep(30)

    with pytest.raises(JobCancelled, match="bob"):
        run_coroutine(job, timeout=None, interrupt=early)
    late = Interrupt()
    assert run_sync(lambda: 7, (), {}, None, late) == 7
    late.request("carol")
    assert not late.requested


def test_a_task_that_raises_job_cancelled_ends_cancelled_without_retries(huey):
    from runner.store.sqlite import queries
    from runner.testing import drain
    from tests import jobs

    result = jobs.gives_up()
    drain(include_scheduled=True)
    row = queries.get_job(huey.jobs.db, result.id)
    assert (row.state, row.attempt) == ("cancelled", 1)
    assert row.reason == "cancelled by the task: no longer needed"
