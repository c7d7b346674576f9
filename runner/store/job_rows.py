"""Rows of ``runner_job`` as producers and workers hand them over (no SQL here).

The statements that write them are the transitions of :mod:`runner.store.sqlite.transitions`.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.errors import QueueFull
from runner.printable import storable


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
    concurrency_key: str | None = None
    unique_for: float | None = None
    """Seconds a job of the same ``unique_key`` counts as a duplicate (None: while it lives)."""
    unique_states: tuple[str, ...] = ()
    """States in which an existing job of the key counts (empty: waiting or running)."""
    fresh: bool = False
    """The id was made for this job by this process and never written: no store holds it."""


#: What a full queue does with an enqueue (``[queues.NAME] on_full``).
ON_FULL = ("reject", "block", "drop_oldest")


@dataclass(frozen=True)
class QueueBound:
    """How many jobs a queue holds waiting (0: no bound) and what happens beyond that.

    ``reject`` refuses the enqueue (``QueueFull``, counted as rejected);
    ``block`` refuses it without counting, for a producer that waits for room
    and tries again; ``drop_oldest`` cancels the queue's oldest waiting jobs to
    make room, in the same transaction.
    """

    max_size: int
    on_full: str = "reject"


def queue_full(queue: str, waiting: int, max_size: int, adding: int = 1, *,
               ready: int | None = None, paused: bool = False) -> QueueFull:
    """The error of a ``reject`` or ``block`` queue that has no room for ``adding`` more jobs,
    worded alike by every backend: the bound may come from ``[worker] queue_size`` or the
    queue's own section. A queue with some room is not called full: the batch is too big.

    The bound counts scheduled and retrying jobs with the ready ones (its count is kept
    by the writes themselves, and a job comes due with no write), so the message says so;
    ``ready`` (the ``available`` jobs, when read) splits the count and picks the advice:
    more workers do not make room held by jobs due later, nor in a ``paused`` queue.
    """
    room = max(0, max_size - waiting)
    if ready is None:
        held = f"{waiting} jobs waiting (ready, scheduled or retrying)"
    else:
        ready = min(ready, waiting)  # read after the refusal: a job may have come since
        held = f"{waiting} jobs waiting ({ready} ready, {waiting - ready} scheduled or retrying)"
    if room:
        told = (f"queue '{queue}' has room for {room} more job{'s' if room != 1 else ''} "
                f"({waiting} waiting, bound {max_size}); this batch adds {adding}")
    else:
        told = f"queue '{queue}' is full: {held}, its bound is {max_size}"
    raise_bound = f"raise [worker] queue_size or [queues.{queue}] max_size"
    if paused:
        advice = (f"queue '{queue}' is paused: resume it with `python -m runner queues resume "
                  f"{queue}`, or {raise_bound}")
    elif ready == 0 and waiting:
        advice = f"scheduled and retrying jobs hold their room until they run: {raise_bound}"
    else:
        advice = f"{raise_bound}, or start more workers"
    refused = QueueFull(f"{told}; nothing was written ({advice})", queue=queue, room=room)
    refused.waiting, refused.bound, refused.adding = waiting, max_size, adding
    return refused


@dataclass(frozen=True)
class Enqueued:
    """What an enqueue wrote besides the new rows."""

    duplicates: dict[str, str]
    """New job id -> the id of the existing job of its unique key (the new one not written)."""
    dropped: tuple[str, ...] = ()
    """Waiting jobs cancelled to make room (``drop_oldest``)."""


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

    def __post_init__(self) -> None:
        # Task code writes these texts; one no backend can encode must not lose the outcome.
        for name in ("error_type", "message", "traceback"):
            object.__setattr__(self, name, storable(getattr(self, name)))


@dataclass(frozen=True)
class Failed:
    """A failed attempt whose outcome could not be written as its worker stopped: what
    :meth:`~runner.store.backend.Store.retry` (``state`` retrying) or
    :meth:`~runner.store.backend.Store.bury` (``state`` dead) would have written."""

    job_id: str
    attempt: int
    failure: FailureInfo
    state: str
    worker: str | None
    now: float
    reason: str | None
    run_at: float | None = None
    data: bytes | None = None
    results: tuple[tuple[str, bytes], ...] = ()
    jobs: tuple[NewJob, ...] = ()
