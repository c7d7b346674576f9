"""The timeout watchdog: deadlines fire in order, finished attempts leave no trace."""

from __future__ import annotations

import threading
import time

import pytest

from runner.errors import TaskTimeout
from runner.execution import run_sync
from runner.watchdog import Watchdog


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_short_deadline_armed_after_a_long_one_still_fires():
    dog = Watchdog()
    me = threading.get_ident()
    long = dog.arm(me, time.monotonic() + 300, 300)
    try:
        short = dog.arm(me, time.monotonic() + 0.05, 0.05)
        with pytest.raises(TaskTimeout):
            _spin(10)
        assert dog.disarm(short)
    finally:
        assert not dog.disarm(long)


def test_a_later_deadline_does_not_hide_an_earlier_one():
    dog = Watchdog()
    me = threading.get_ident()
    first = dog.arm(me, time.monotonic() + 0.1, 0.1)
    later = dog.arm(me, time.monotonic() + 300, 300)
    try:
        with pytest.raises(TaskTimeout):
            _spin(10)
        assert dog.disarm(first)
    finally:
        assert not dog.disarm(later)


def test_finished_attempts_do_not_pile_up_in_the_watchdog():
    dog = Watchdog()
    me = threading.get_ident()
    for n in range(10_000):
        dog.disarm(dog.arm(me, time.monotonic() + 300 + (n % 7), 300))
    assert len(dog._heap) <= 64 + 2


def test_a_sync_task_times_out_after_many_quick_ones():
    for _ in range(1000):
        assert run_sync(lambda: 1, (), {}, 300) == 1
    with pytest.raises(TaskTimeout, match="timeout 0.05s"):
        run_sync(_spin, (10,), {}, 0.05)


def test_a_deadline_after_a_finished_earlier_one_still_fires():
    dog = Watchdog()
    me = threading.get_ident()
    dog.disarm(dog.arm(me, time.monotonic() + 0.05, 0.05))  # the thread sleeps until then
    later = dog.arm(me, time.monotonic() + 0.2, 0.2)
    with pytest.raises(TaskTimeout):
        _spin(10)
    assert dog.disarm(later)
