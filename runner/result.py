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

A job that died or was cancelled with nothing stored (cancelled before it ran,
its task unknown to the worker) ends a blocking wait with its reason, as the
error a failed attempt stores would: ``TaskException`` with
``JobCancelled(...)`` or the error the row names, rather than a wait without
end. A look that does not wait answers with what is stored, as in huey (None
for a revoked job). A job cancelled while retrying has its earlier attempt's
error stored; that error is not its answer, blocking or not: the cancel is.

While a blocking ``get()`` waits, each look reads the job's state alone (one
read, not a result and a state): the result is written with the state that
ends the job, so it is read once that state is there.
"""

from __future__ import annotations

import time
from typing import Any

from huey.api import Result
from huey.constants import EmptyData
from huey.exceptions import CancelExecution, ResultTimeout
from huey.utils import Error

from runner.errors import JobCancelled
from runner.store.rows import JobRow
from runner.store.states import FINAL, JobState

#: The first pause between looks for a result; it grows by ``backoff`` up to ``max_delay``
#: (huey starts at 50 ms; a local result is usually there in a few).
FIRST_DELAY = 0.002
_NOTHING = object()


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
        jobs = getattr(self.huey, "jobs", None)
        delay = FIRST_DELAY
        if self._result is not EmptyData and not isinstance(self._result, Error):
            return self._result
        # An error read before (and taken, unless preserved): a retried attempt's, which a
        # later attempt may replace, or the last one's, which is the answer once the job is
        # over and nothing newer is stored.
        earlier = self._result if isinstance(self._result, Error) else None
        self._result = EmptyData
        while True:
            if jobs is None:
                value = self._get(preserve)
                if value is not EmptyData:
                    return value
                if earlier is not None:
                    return self._keep(earlier)
            else:
                # The job's state is the one read of a look: the result is written in the
                # same transaction as the state that ends the job, so it is read only then.
                state = jobs.job_state(self.id)
                if state is JobState.COMPLETED:
                    value = self._get(preserve)  # an error here is an earlier attempt's
                    self._result = None if value is EmptyData or isinstance(value, Error) \
                        else value
                    return self._result
                # Without a job (a pipeline's later step, a pruned job) huey's result, if
                # any, answers; a job dead or cancelled answers with what it stored, else
                # with its reason.
                if state is None or state in FINAL:
                    value = self._get(preserve)
                    if state is JobState.CANCELLED:
                        stored = earlier if value is EmptyData else value
                        return self._keep(self._cancelled(jobs, stored))
                    if value is not EmptyData:
                        return value
                    if earlier is not None:
                        return self._keep(earlier)
                    if state is not None:
                        return self._keep(self._ended(jobs))
                else:
                    earlier = None  # the job runs again: its next outcome is the answer
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                if revoke_on_timeout:
                    self.revoke()
                raise ResultTimeout("timed out waiting for result")
            time.sleep(min(delay, max_delay) if left is None else min(delay, max_delay, left))
            delay *= backoff

    def _get(self, preserve: bool = False) -> Any:
        # A unique job is shared: every call of its key got a handle on it. Reading its
        # result keeps it for the others (retention deletes it with the job); taken by
        # the first reader, it would read as None (returned None) to every other one.
        unique = (getattr(getattr(self.task, "wrapper", None), "unique", None) is not None
                  or getattr(self.task, "unique_key", None) is not None)
        return super()._get(preserve or unique)

    def _keep(self, value: Any) -> Any:
        self._result = value
        return value

    def _outcome(self, value: Any) -> Any:
        """``value``, unless it is an error left by an attempt before the one that completed."""
        if isinstance(value, Error):
            jobs = getattr(self.huey, "jobs", None)
            state = None if jobs is None else jobs.job_state(self.id)
            if state is JobState.COMPLETED:
                self._result = None
                return None
            if state is JobState.CANCELLED:
                return self._keep(self._cancelled(jobs, value))
        return value

    def _cancelled(self, jobs: Any, stored: Any) -> Any:
        """A cancelled job's answer: what its cancel stored, else the cancel itself. An
        error stored by an attempt before the cancel (a job cancelled while retrying) is
        not the answer: the job will never end with it."""
        if stored is None or stored is EmptyData or (
                isinstance(stored, Error) and not _is_cancel(stored)):
            return self._ended(jobs)
        return stored

    def _ended(self, jobs: Any) -> Error:
        return ended_error(jobs.store.get_job(self.id))


def _is_cancel(error: Error) -> bool:
    """Whether ``error`` is the cancel that ended the job (written with it, or raised by the
    task), not the error of an attempt before it."""
    return str(error.metadata.get("error", "")).startswith(_CANCELS)


_CANCELS = (f"{JobCancelled.__name__}(", f"{CancelExecution.__name__}(")


def ended_error(row: JobRow) -> Error:
    """The answer of a job that died or was cancelled without storing one: its reason, in
    the form of the error a failed attempt stores (what ``TaskException`` shows)."""
    if row.state == JobState.CANCELLED:
        error = repr(JobCancelled(row.reason or str(row.state)))
    elif row.error_type:
        error = f"{row.error_type}({row.error_message or ''!r})"
    else:
        error = row.reason or str(row.state)
    # A cancel has no traceback; the one stored is an earlier attempt's (cancelled while retrying).
    traceback = "" if row.state == JobState.CANCELLED else row.last_error or ""
    return Error({"error": error, "retries": 0, "traceback": traceback,
                  "task_id": row.id})
