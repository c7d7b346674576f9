"""What the store's reads return and its filters take: plain values, the same for every backend.

Callers outside :mod:`runner.store` import these (never a backend's module);
each backend builds them from its own rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from runner.errors import JobNotFound
from runner.store.job_rows import Claimed
from runner.store.states import JobState

#: Name of the built-in task that fans events out to their handlers.
DISPATCH_TASK = "runner.events.dispatch"


@dataclass(frozen=True)
class JobRow:
    """A job as the CLI and the dashboard see it."""

    id: str
    task: str
    queue: str
    priority: int
    state: str
    args: str | None
    attempt: int
    max_attempts: int
    run_at: float
    created_at: float
    started_at: float | None
    finished_at: float | None
    lease_owner: str | None
    crashes: int
    failures: int
    first_failed_at: float | None
    last_failed_at: float | None
    error_type: str | None
    error_message: str | None
    last_error: str | None
    reason: str | None
    progress_done: float | None
    progress_total: float | None
    progress_message: str | None
    event_id: str | None
    schedule: str | None
    requested: int
    """Attempts the task asked for (:class:`runner.Retry`), which the retry limit does not
    count: the failed attempts recorded with kind ``retry``."""

    def attempt_text(self, *, compact: bool = False, ahead: int = 0) -> str:
        """:func:`attempt_text` of this job's attempt (``ahead``: of the one that many later)."""
        return attempt_text(self.attempt + ahead, self.max_attempts, self.crashes,
                            requested=self.requested, compact=compact)

    @property
    def listed_error(self) -> str:
        """The last failed attempt's error as listings show it (``KeyError: 'k'``); empty for
        a job that completed since (its failed attempts stay in ``show``) or never failed."""
        if self.state == JobState.COMPLETED or not (self.error_type or self.error_message):
            return ""
        message = self.error_message or ""
        if message == f"{self.error_type}()":
            message = ""  # an error raised without a message reads as its repr
        first, _, more = message.partition("\n")
        message = f"{first} …" if more else first
        if not self.error_type or not message:
            return self.error_type or message
        return f"{self.error_type}: {message}"

    @property
    def listed_note(self) -> str:
        """The listings' error column: :attr:`listed_error`, else why the job is where it is
        (a cancel, a requeue); nothing for a completed job."""
        if self.state == JobState.COMPLETED:
            return ""
        return self.listed_error or self.reason or ""

    def listed_duration(self, now: float, stalled: bool = False) -> float | None:
        """The listings' duration: a running job's time so far; none for a ``stalled``
        one (its attempt ended when its worker died, nobody knows when); else
        :attr:`duration`."""
        if self.state == JobState.EXECUTING:
            if stalled or self.started_at is None:
                return None
            return max(0.0, now - self.started_at)
        return self.duration

    @property
    def duration(self) -> float | None:
        """Seconds the last attempt ran, when it has started."""
        if self.started_at is None:
            return None
        if self.finished_at is None or self.finished_at < self.started_at:
            return None
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class AttemptError:
    """One failed attempt of a job."""

    attempt: int
    kind: str
    error_type: str | None
    message: str | None
    traceback: str | None
    worker: str | None
    started_at: float | None
    failed_at: float


@dataclass(frozen=True)
class LogRow:
    """One stored log record."""

    id: int
    created_at: float
    level: int
    logger: str
    message: str
    job_id: str | None
    task: str | None
    worker: str | None


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a listing shows; every field narrows it."""

    state: str | None = None
    queue: str | None = None
    task: str | None = None
    text: str | None = None
    event_id: str | None = None
    worker: str | None = None
    """Jobs a worker is running now (its lease)."""
    error: tuple[str | None, str | None] | None = None
    """Jobs whose last error is exactly this (error type, message); None in either
    part: none recorded. One message of a failure group, where ``text`` would also
    match longer messages and other error types."""
    error_text: str | None = None
    """Jobs whose last error's type or message contains this, ignoring case (the
    dashboard's ``error:`` word): a part of an error, where ``error`` is the whole."""



@dataclass(frozen=True)
class QueueDepth:
    """One queue's backlog."""

    queue: str
    waiting: int
    running: int
    oldest_waiting_age: float | None


@dataclass(frozen=True)
class WorkerRow:
    """A worker process as recorded by its heartbeats."""

    id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    state: str
    concurrency: int
    queues: str | None
    rss_bytes: int | None
    cpu_percent: float | None
    running: int
    processed: int
    status: str | None
    clock_offset: float | None = None
    """Seconds this worker's clock was ahead of the store's (negative: behind) at its
    last heartbeat; None where the store has no clock of its own (SQLite) or before
    the worker measured it."""


#: (error type, message, jobs, dead, retrying, tasks comma-separated, last failure)
FailureRow = tuple["str | None", "str | None", int, int, int, "str | None", "float | None"]


@dataclass(frozen=True)
class Beat:
    """What a heartbeat learnt in its own round trip."""

    held: frozenset[str]
    """Of the jobs it was given, those still running under the worker's lease (extended)."""
    server_time: float | None = None
    """The server's clock, read while the heartbeat ran; None where the data has no
    clock but this host's (a SQLite file)."""
    known: bool = True
    """False when the worker's own row was not there to update (a file restored from a
    backup, a prefix emptied): it registers again, or reads as gone to everyone."""


@dataclass(frozen=True)
class Recovery:
    """What one recovery pass did."""

    requeued: list[str]
    buried: list[str]


#: (created_at, level, logger, message, job_id, task, worker)
LogTuple = tuple[float, int, str, str, "str | None", "str | None", "str | None"]


@dataclass(frozen=True)
class LogFilter:
    """Which records a listing shows; every field narrows it."""

    job_id: str | None = None
    task: str | None = None
    level: int = 0
    worker_only: bool = False



def parse_level(text: str) -> int:
    """A level name or number as its number (``"warning"`` -> 30).

    Raises:
        ValueError: not a level.
    """
    if text.isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {text!r}")
    return level


@dataclass
class PruneReport:
    """What one pass deleted (or, dry, would delete)."""

    deleted: dict[str, int] = field(default_factory=dict)
    vacuumed_pages: int = 0
    auto_vacuum: bool = True
    """False when the file cannot give pages back (made before auto_vacuum was set)."""
    wal_bytes_before: int = 0
    wal_bytes_after: int = 0
    checkpoint_busy: bool = False
    forgotten_queues: int = 0
    """Idle queues whose bookkeeping (waiting count, share turn) was dropped (or, dry,
    would be)."""


@dataclass(frozen=True)
class ClaimResult:
    """What one claim transaction found."""

    claimed: list[Claimed]
    next_due: float | None
    """With nothing claimed: the earliest ``run_at`` of a waiting job."""
    suspect: bool
    """The claim took a job that was running when a worker died (it runs alone)."""
    revocations: bool
    """Whether any huey revocation exists (else huey's revocation reads are skipped)."""
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    """(task, queue) of each claimed job, so its completion is counted without a read."""
    full: frozenset[str] = frozenset()
    """Concurrency limits at their cap after this claim (:func:`runner.flow.full_label`
    names): a job of theirs that finishes should say so at once, as others wait."""


class AmbiguousId(LookupError):
    """A shortened id matches more than one row."""


def attempt_text(attempt: int, max_attempts: int, crashes: int, *, requested: int = 0,
                 compact: bool = False) -> str:
    """Which attempt a job is on, against its retry budget: '2 of 3' (``compact``: '2/3').

    A run again after a worker crash, and one the task asked for (``requested``: it
    raised :class:`runner.Retry`), do not spend the budget, so ``attempt`` may pass
    ``max_attempts`` and "4/2" would read as a broken limit. The attempts the budget
    counted are then shown apart from the others: '2 (1 of 1 allowed +1 crash)',
    '4 (2 of 2 allowed +2 requested)', compact '1/1 +1 crash', '2/2 +2 requested'.
    """
    if not crashes and not requested:
        return f"{attempt}/{max_attempts}" if compact else f"{attempt} of {max_attempts}"
    counted = max(0, attempt - crashes - requested)
    extras = []
    if crashes:
        extras.append(f"+{crashes} crash" + ("es" if crashes > 1 else ""))
    if requested:
        extras.append(f"+{requested} requested")
    extra = " ".join(extras)
    if compact:
        return f"{counted}/{max_attempts} {extra}"
    return f"{attempt} ({counted} of {max_attempts} allowed {extra})"


def short_id(ident: str) -> str:
    """The random tail of an id: what listings show and lookups accept."""
    return ident[-12:]


@dataclass(frozen=True)
class PauseRow:
    """The recorded state of one queue or task."""

    kind: str
    name: str
    paused: bool
    changed_at: float
    changed_by: str | None


def found_row(lookup: Callable[[], tuple | None], ident: str, what: str,
              missing: type[Exception]) -> tuple:
    """The row ``lookup`` finds by id or a unique start or end of it.

    Raises:
        missing: no row, or the prefix is ambiguous (``what`` names the kind of row).
    """
    try:
        row = lookup()
    except AmbiguousId:
        raise missing(f"{what} id '{ident}' is ambiguous; give more of it") from None
    if row is None:
        raise missing(f"no {what} with id '{ident}'")
    return row


def found_job(lookup: Callable[[], tuple | None], job_id: str) -> JobRow:
    """The job ``lookup`` finds by id or a unique start or end of it (the job columns).

    Raises:
        JobNotFound: no job, or the prefix is ambiguous.
    """
    return JobRow(*found_row(lookup, job_id, "job", JobNotFound))
