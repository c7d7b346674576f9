"""Small builders shared by the conformance tests: jobs, failures and a fixed clock."""

from __future__ import annotations

import itertools

from runner.store.job_rows import FailureInfo, NewJob

#: The clock of every test: explicit times, never the wall clock.
T0 = 1_700_000_000.0
OWNER = "worker-host-a:1234:1"
OTHER = "worker-host-b:5678:1"

_ids = itertools.count(1)


def job(run_at: float = T0, *, queue: str = "default", priority: int = 0,
        max_attempts: int = 1, task: str = "tests.jobs.add", unique_key: str | None = None,
        event_id: str | None = None, schedule: str | None = None,
        job_id: str | None = None, concurrency_key: str | None = None,
        unique_for: float | None = None, unique_states: tuple[str, ...] = ()) -> NewJob:
    """A job row as a producer hands it over.

    An id made here is fresh (never written before), as a task call's is: a store may
    skip its check (Redis takes its quick enqueue); a given ``job_id`` may exist.
    """
    ident = job_id or f"job-{next(_ids):06d}"
    return NewJob(id=ident, task=task, queue=queue, priority=priority, data=b"payload",
                  args="()", max_attempts=max_attempts, run_at=run_at, unique_key=unique_key,
                  event_id=event_id, schedule=schedule, concurrency_key=concurrency_key,
                  unique_for=unique_for, unique_states=unique_states, fresh=job_id is None)


def failure(message: str = "boom", *, kind: str = "error",
            started_at: float | None = None) -> FailureInfo:
    return FailureInfo(kind=kind, error_type="ValueError", message=message,
                       traceback=f"Traceback ...\nValueError: {message}", started_at=started_at)
