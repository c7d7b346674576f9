"""Throttle: costly reads are reused for a while, cheap or explicit ones are not."""

from __future__ import annotations

from tui.throttle import Throttle


def test_a_costly_read_is_reused_until_its_time_is_up():
    now = [100.0]
    calls = []
    throttle = Throttle(factor=1e12, cap=5.0, clock=lambda: now[0])  # any cost hits the cap

    def read():
        calls.append(now[0])
        return len(calls)

    assert throttle.read("k", read) == 1
    now[0] += 4.9
    assert throttle.read("k", read) == 1
    assert throttle.read("k", read, fresh=True) == 2
    now[0] += 5.1
    assert throttle.read("k", read) == 3
    throttle.clear()
    assert throttle.read("k", read) == 4


def test_with_no_factor_every_read_runs():
    throttle = Throttle(factor=0, clock=lambda: 0.0)
    values = iter(range(3))
    assert [throttle.read("k", lambda: next(values)) for _ in range(3)] == [0, 1, 2]
