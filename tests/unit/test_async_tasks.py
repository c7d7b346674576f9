"""An ``async def`` attempt on its thread's event loop: what it leaves behind ends with it."""

from __future__ import annotations

import asyncio

from runner import execution
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
