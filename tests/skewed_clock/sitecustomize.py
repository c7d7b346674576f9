"""Puts this process's wall clock ``TEST_CLOCK_SKEW`` seconds ahead (negative: behind).

A directory on a worker subprocess's ``PYTHONPATH`` (see ``tests/clock_support.py``):
Python imports ``sitecustomize`` at start-up, before any of the runner, so every
``time.time()`` of that process reads as a host whose clock is off would. So do
huey's "now" (the ETA of ``delay=``, its check that a task is due), which reads
``datetime.now()`` in C rather than ``time.time()``: replacing ``datetime.datetime``
itself would break pickling every datetime. The monotonic clock stays true, as
it does on such a host.
"""

import datetime
import os
import time

_skew = float(os.environ.get("TEST_CLOCK_SKEW") or 0)
if _skew:
    _true_time, _true_time_ns = time.time, time.time_ns
    time.time = lambda: _true_time() + _skew
    time.time_ns = lambda: _true_time_ns() + int(_skew * 1e9)

    def _utcnow():
        return datetime.datetime.fromtimestamp(time.time(), datetime.UTC).replace(tzinfo=None)

    import huey.api
    import huey.utils

    huey.utils.utcnow = huey.api.utcnow = _utcnow
