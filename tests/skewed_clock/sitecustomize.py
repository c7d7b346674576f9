"""Puts this process's wall clock ``TEST_CLOCK_SKEW`` seconds ahead (negative: behind).

A directory on a worker subprocess's ``PYTHONPATH`` (see ``tests/clock_support.py``):
Python imports ``sitecustomize`` at start-up, before any of the runner, so every
``time.time()`` of that process reads as a host whose clock is off would. The
monotonic clock stays true, as it does on such a host.
"""

import os
import time

_skew = float(os.environ.get("TEST_CLOCK_SKEW") or 0)
if _skew:
    _true_time, _true_time_ns = time.time, time.time_ns
    time.time = lambda: _true_time() + _skew
    time.time_ns = lambda: _true_time_ns() + int(_skew * 1e9)
