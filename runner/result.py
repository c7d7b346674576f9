"""The handle an enqueue returns: a blocking ``get()`` waits for the job's final outcome.

huey stores the error of a failed attempt even when the task will be retried
(``store_intermediate_errors``, which ``.error()`` handlers rely on), so huey's
``Result.get(blocking=True)`` raises on the first failure of a task that may
still succeed. Here an error read while the job is still going to run again
is set aside and the wait goes on, until the job completes, dies or is
cancelled; a non-blocking ``get()`` answers with what is stored, as in huey.
"""

from __future__ import annotations

import time
from typing import Any

from huey.api import Result
from huey.constants import EmptyData
from huey.utils import Error


class RunnerResult(Result):
    """huey's Result whose blocking read skips the errors of attempts that are retried."""

    def get_raw_result(self, blocking: bool = False, timeout: float | None = None,
                       backoff: float = 1.15, max_delay: float = 1.0,
                       revoke_on_timeout: bool = False, preserve: bool = False) -> Any:
        if not blocking:
            return super().get_raw_result(blocking, timeout, backoff, max_delay,
                                          revoke_on_timeout, preserve)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            value = super().get_raw_result(True, left, backoff, max_delay, revoke_on_timeout,
                                           preserve)
            if not isinstance(value, Error):
                return value
            if self._final():
                # The final attempt's error may have replaced the one read just before.
                newer = self.huey.get_raw(self.id, peek=preserve)
                return self.huey.serializer.deserialize(newer) if newer is not EmptyData \
                    else value
            self._result = EmptyData  # an attempt that will be retried: wait for the next
            if preserve:
                time.sleep(min(max_delay, 0.05))  # the error stays stored: do not spin on it

    def _final(self) -> bool:
        jobs = getattr(self.huey, "jobs", None)
        return jobs is None or jobs.job_is_final(self.id)
