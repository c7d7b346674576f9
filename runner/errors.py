"""The one error hierarchy of the runner.

Every error a user can see derives from :class:`RunnerError`. Errors that end a
command line program carry the ``sysexits.h`` code the program exits with, so
systemd's ``RestartPreventExitStatus`` and shell scripts can tell them apart.
"""

from __future__ import annotations

from huey.exceptions import CancelExecution, RetryTask
from huey.exceptions import TaskTimeout as _HueyTaskTimeout

#: sysexits.h codes used by ``run.py`` and ``python -m runner``.
EX_DATAERR = 65
EX_CANTCREAT = 73
EX_TEMPFAIL = 75
EX_CONFIG = 78
#: Not a sysexits.h code: the worker went over ``[worker] max_memory_mb`` and drained.
EX_MEMORY_LIMIT = 86
#: Not a sysexits.h code: more worker threads were stuck in blocking calls than the
#: worker runs; it drained and exited so a restart frees them.
EX_STUCK_THREADS = 87


class RunnerError(Exception):
    """Base class of every error raised by the runner.

    The message is one line; ``detail`` is what a program prints under it, when there is
    more to show (the traceback of a task module that failed at import).
    """

    exit_code: int = 1
    #: Lines shown under the message, or None.
    detail: str | None = None

    def __init__(self, *args: object, detail: str | None = None) -> None:
        super().__init__(*args)
        self.detail = detail


class ConfigError(RunnerError):
    """settings.toml or an environment override is malformed or invalid."""

    exit_code = EX_CONFIG


class AddressInUse(RunnerError):
    """Another process listens on the worker's ``[metrics] listen`` address; it may let go
    (an older worker still draining), so trying again later can work."""

    exit_code = EX_TEMPFAIL


class InvalidSchedule(ConfigError):
    """A cron expression, time zone or schedule option cannot be used."""


class DatabaseError(RunnerError):
    """The jobs database cannot be used."""


class DatabaseCorrupt(DatabaseError):
    """The file is not a jobs database, or SQLite reports it damaged."""

    exit_code = EX_DATAERR


class SchemaTooNew(DatabaseError):
    """The database was written by a newer version of jobrunner; nothing was changed."""

    exit_code = EX_CONFIG


class SchemaTooOld(DatabaseError):
    """A reader that must not write met a database no worker of this version has upgraded."""

    exit_code = EX_TEMPFAIL


class DatabaseUnavailable(DatabaseError):
    """The database file or its directory cannot be created or opened."""

    exit_code = EX_CANTCREAT


class DatabaseRefused(DatabaseUnavailable):
    """The database server answered but cannot hold the jobs tables as asked (the role may
    not create them, the search_path names no schema); waiting for it will not help."""


class DiskFull(DatabaseError):
    """SQLite could not write: the disk (or the database's page limit) is full, or I/O failed."""

    exit_code = 74  # EX_IOERR


class DatabaseLocked(DatabaseError):
    """The database stayed write-locked past the deadline; nothing was written."""

    exit_code = EX_TEMPFAIL


class SerializationError(RunnerError):
    """Arguments or event data cannot be serialized; nothing was written."""

    exit_code = EX_DATAERR


class InvalidArgument(RunnerError):
    """A command-line value, or an option given to one call (``priority=``, ``delay=``,
    ``timeout=``...), is out of range or of the wrong type; nothing was written."""

    exit_code = EX_DATAERR


class UnknownTask(RunnerError):
    """No task is registered under the given name."""

    exit_code = EX_DATAERR


class QueueFull(RunnerError):
    """A queue has no room for an enqueue's jobs (it holds its bound of waiting jobs, or
    fewer than the enqueue adds); nothing was written."""

    exit_code = EX_TEMPFAIL

    def __init__(self, message: str, *, queue: str | None = None, room: int = 0) -> None:
        super().__init__(message)
        #: The queue that is full (None when not known).
        self.queue = queue
        #: How many more jobs that queue takes now (fewer than the refused batch held).
        self.room = room
        #: The jobs the bound counted (ready, scheduled or retrying), the bound, and how
        #: many the refused call added (0 when not known).
        self.waiting = 0
        self.bound = 0
        self.adding = 0


class DuplicateJob(RunnerError):
    """A job with this id, or a live job with this unique key, exists; nothing was written."""

    def __init__(self, message: str, *, by: str) -> None:
        super().__init__(message)
        #: ``"id"`` or ``"unique_key"``: what the new job shares with the existing one.
        self.by = by


class JobCancelled(RunnerError, CancelExecution):
    """Raised inside a running job that was cancelled; the job ends ``cancelled``, not retried.

    Cooperative code may raise it itself after seeing ``current_job().cancelled``.
    """

    def __init__(self, message: str = "job cancelled") -> None:
        CancelExecution.__init__(self, message, False)


class JobNotFound(RunnerError):
    """No job has the given id."""


class ScheduleNotFound(RunnerError):
    """No schedule has the given name."""

    exit_code = EX_DATAERR


class EventNotFound(RunnerError):
    """No event has the given id."""


class InvalidAction(RunnerError):
    """The action does not apply to the job in its current state."""


class SourceInUse(InvalidAction):
    """Workers still run on the jobs file a copy would read; nothing was copied."""

    exit_code = EX_TEMPFAIL


class TargetInUse(InvalidAction):
    """The database a copy would write holds jobs of its own; nothing was copied."""

    exit_code = EX_CANTCREAT


class InvalidFilter(RunnerError):
    """A job filter names a state, or uses a qualifier, that does not exist."""


class TaskTimeout(RunnerError, _HueyTaskTimeout):
    """A task ran longer than its ``timeout``; the attempt is failed and retried per policy."""


class Retry(RetryTask):
    """Raised by a task to ask for another attempt, optionally after ``delay`` seconds.

    A requested retry does not use up the task's retry limit.
    """

    def __init__(self, msg: str | None = None, *, delay: float | None = None) -> None:
        super().__init__(msg, eta=None, delay=delay)


class Fatal(Exception):  # noqa: N818 - named for what the task author means
    """Raised by a task to fail the job at once, without further retries."""


class TaskAborted(RunnerError):
    """A task let out a BaseException that is not an Exception: ``SystemExit`` from
    ``sys.exit()``, ``KeyboardInterrupt``, a ``CancelledError`` the runner did not ask for.

    The attempt fails with this error (the original is its ``__cause__``) and is
    retried per the task's policy; a job cannot stop the worker that runs it.
    """

    def __init__(self, cause: BaseException) -> None:
        name = type(cause).__name__
        try:
            text = str(cause)
        except Exception:
            text = ""
        super().__init__(f"{name}: {text}" if text else name)
