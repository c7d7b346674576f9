"""Rows of ``runner_job`` as producers and workers hand them over (no SQL here).

The statements that write them are the transitions of :mod:`runner.store.sqlite.transitions`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class NewJob:
    """What a producer writes for one job.

    Not frozen: a bulk enqueue builds one per job, and a frozen dataclass takes
    twice as long to build. Nothing changes one once it is handed over.
    """

    id: str
    task: str
    queue: str
    priority: int
    data: bytes
    args: str | None
    max_attempts: int
    run_at: float
    unique_key: str | None = None
    event_id: str | None = None
    schedule: str | None = None


@dataclass(frozen=True)
class Claimed:
    """A job a worker of this process holds under lease."""

    id: str
    data: bytes
    attempt: int
    started_at: float


@dataclass(frozen=True)
class Ack:
    """A finished attempt waiting to be written, with what follows from it.

    ``results`` (result store rows) and ``jobs`` (pipeline steps) are written in
    the transaction that marks the job completed, and only if it does.
    """

    job_id: str
    attempt: int
    started_at: float | None
    finished_at: float
    results: tuple[tuple[str, bytes], ...] = ()
    jobs: tuple[NewJob, ...] = ()


@dataclass(frozen=True)
class FailureInfo:
    """One failed attempt, as recorded in ``runner_job_error``."""

    kind: str
    error_type: str
    message: str
    traceback: str
    started_at: float | None = None
