"""An ``async def`` attempt on its thread's event loop: what it leaves behind ends with it."""

from __future__ import annotations

import asyncio
import time

import pytest

from runner import execution
from runner.errors import TaskTimeout
from runner.execution import run_coroutine, thread_loop


def test_a_task_left_running_is_cancelled_as_the_coroutine_returns():
    seen = []

    async def background():
        try:
            await asyncio.sleep(30)
        finally:
            seen.append("background cleaned up")

    async def job():
        keep = asyncio.get_running_loop().create_task(background())
        seen.append(keep)
        return "returned"

    assert run_coroutine(job, timeout=5) == "returned"
    assert seen[0].cancelled() and seen[1:] == ["background cleaned up"]
    # Nothing of it runs inside the next coroutine.
    assert run_coroutine(lambda: asyncio.sleep(0, "next"), timeout=5) == "next"
    assert seen[1:] == ["background cleaned up"]


def test_a_left_task_that_ignores_its_cancel_is_dropped_with_the_loop(monkeypatch):
    monkeypatch.setattr(execution, "LEFTOVER_GRACE", 0.05)
    woke = []

    async def stubborn():
        for _ in range(3):
            try:
                await asyncio.sleep(0.2)
                woke.append("woke")
            except asyncio.CancelledError:
                pass

    async def job():
        woke.append(asyncio.get_running_loop().create_task(stubborn()))

    first = thread_loop()
    run_coroutine(job, timeout=5)
    assert first.is_closed() and thread_loop() is not first
    assert run_coroutine(lambda: asyncio.sleep(0.5, "next"), timeout=5) == "next"
    assert "woke" not in woke


def test_a_coroutine_that_never_awaits_times_out_like_a_plain_function(monkeypatch):
    monkeypatch.setattr(execution, "LOOP_GRACE", 0.05)

    async def job():  # a CPU loop, or blocking code, in an async def
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sum(range(50))
        return "ran to the end"

    begun = time.monotonic()
    with pytest.raises(TaskTimeout, match="timeout 0.1s"):
        run_coroutine(job, timeout=0.1)
    assert time.monotonic() - begun < 5
    assert run_coroutine(lambda: asyncio.sleep(0.1, "next"), timeout=5) == "next"


def test_a_coroutine_cleaning_up_after_its_timeout_is_not_interrupted(monkeypatch):
    monkeypatch.setattr(execution, "LOOP_GRACE", 0.05)
    seen = []

    async def job():
        try:
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(0.3)  # cleanup that awaits, past the grace
            seen.append("cleaned up")

    with pytest.raises(TaskTimeout):
        run_coroutine(job, timeout=0.1)
    assert seen == ["cleaned up"]


def test_a_coroutine_that_returns_from_its_timeout_cancel_still_times_out():
    async def job():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return "partial"  # the attempt ran past its timeout all the same

    with pytest.raises(TaskTimeout, match="timeout 0.1s"):
        run_coroutine(job, timeout=0.1)
