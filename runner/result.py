"""The handle an enqueue returns: a blocking ``get()`` waits for the job's final outcome.

huey stores the error of a failed attempt even when the task will be retried
(``store_intermediate_errors``, which ``.error()`` handlers rely on), so huey's
``Result.get(blocking=True)`` raises on the first failure of a task that may
still succeed. Here an error read while the job is still going to run again
is set aside and the wait goes on, until the job completes, dies or is
cancelled; a non-blocking ``get()`` answers with what is stored, as in huey.

huey stores no result for a task that returns None (``store_none`` False, so
most jobs write nothing), and its blocking ``get()`` then waits out the
timeout. Here the wait also ends when the job is completed with nothing
stored: a result is written in the completion's own transaction, so the task
returned None (or another caller took the result), and the answer is None.

The error of an earlier attempt stays stored when a later attempt completes
returning None (nothing is written over it), and huey would raise it. A
completed job's answer is never an error: read, kept (``preserve=True``) or
taken, blocking or not, such a leftover error reads as None.
"""

from __future__ import annotations

import time
from typing import Any

from huey.api import Result
from huey.constants import EmptyData
from huey.exceptions import ResultTimeout
from huey.utils import Error

#: The first pause between looks for a result; it grows by ``backoff`` up to ``max_delay``
#: (huey starts at 50 ms; a local result is usually there in a few).
FIRST_DELAY = 0.002


class RunnerResult(Result):
    """huey's Result whose blocking read skips the errors of attempts that are retried."""

    def get_raw_result(self, blocking: bool = False, timeout: float | None = None,
                       backoff: float = 1.15, max_delay: float = 1.0,
                       revoke_on_timeout: bool = False, preserve: bool = False) -> Any:
        if not blocking:
            value = super().get_raw_result(blocking, timeout, backoff, max_delay,
                                           revoke_on_timeout, preserve)
            return self._outcome(value)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            value = self._wait(deadline, backoff, max_delay, revoke_on_timeout, preserve)
            if not isinstance(value, Error):
                return value
            if self._final():
                # The final attempt's error may have replaced the one read just before.
                newer = self.huey.get_raw(self.id, peek=preserve)
                return self._outcome(self.huey.serializer.deserialize(newer)
                                     if newer is not EmptyData else value)
            self._result = EmptyData  # an attempt that will be retried: wait for the next
            if preserve:
                time.sleep(min(max_delay, 0.05))  # the error stays stored: do not spin on it

    def _wait(self, deadline: float | None, backoff: float, max_delay: float,
              revoke_on_timeout: bool, preserve: bool) -> Any:
        """huey's blocking read, which also ends (with None) once the job is completed
        with nothing stored."""
        jobs = getattr(self.huey, "jobs", None)
        delay = FIRST_DELAY
        while True:
            value = self._get(preserve)
            if value is not EmptyData:
                return value
            if jobs is not None and jobs.job_completed(self.id):
                value = self._get(preserve)  # written with the completion: there by now
                if value is EmptyData:
                    self._result = None
                    return None
                return value
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                if revoke_on_timeout:
                    self.revoke()
                raise ResultTimeout("timed out waiting for result")
            time.sleep(min(delay, max_delay) if left is None else min(delay, max_delay, left))
            delay *= backoff

    def _outcome(self, value: Any) -> Any:
        """``value``, unless it is an error left by an attempt before the one that completed."""
        if isinstance(value, Error):
            jobs = getattr(self.huey, "jobs", None)
            if jobs is not None and jobs.job_completed(self.id):
                self._result = None
                return None
        return value

    def _final(self) -> bool:
        jobs = getattr(self.huey, "jobs", None)
        return jobs is None or jobs.job_is_final(self.id)
