"""What a worker thread knows about the attempt it runs, and what others may ask of it.

The :class:`Attempt` lives in a thread-local while huey runs the job: the job's
identity (``current_job()``), its deadline (for :mod:`runner.worker.stalls`),
what huey wants written with its outcome (results, the next pipeline step) and
whether it was written off. Hooks registered with :func:`on_attempt_end` run in
the thread after each attempt.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import huey

from runner.errors import JobCancelled, TaskAborted, TaskTimeout
from runner.execution import Interrupt
from runner.store.job_rows import Claimed, FailureInfo, NewJob

logger = logging.getLogger(__name__)

_local = threading.local()

#: The running job, also for code the task runs in another thread with a copy of its
#: context (``asyncio.to_thread``, ``contextvars.copy_context().run``).
job_context: ContextVar[CurrentJob | None] = ContextVar("runner_current_job", default=None)


@dataclass
class Attempt:
    """What the worker thread learns about the attempt it is running."""

    claimed: Claimed
    failure: FailureInfo | None = None
    exception: BaseException | None = None
    outcome: str | None = None
    reason: str | None = None
    settled: bool = False
    current: CurrentJob | None = None
    started_at: float = 0.0
    #: The job and the later steps of its pipeline: their results are written with
    #: the job's outcome, and so is the next step.
    pipeline: frozenset[str] = frozenset()
    results: list[tuple[str, bytes]] = field(default_factory=list)
    follow_ups: list[NewJob] = field(default_factory=list)
    escaped: BaseException | None = None
    thread: threading.Thread | None = None
    #: The task it runs: written off, its retry is decided from it.
    task: Any = None
    timeout: float | None = None
    #: ``time.monotonic()`` after which the attempt overruns its timeout.
    deadline: float | None = None
    #: Written off while stuck: its outcome was recorded for it; it writes nothing.
    abandoned: bool = False
    #: Its thread is writing the outcome: too late to write it off.
    settling: bool = False
    #: How a cancel request stops it (see :class:`runner.execution.Interrupt`).
    interrupt: Interrupt = field(default_factory=Interrupt)

    def overrun(self, now: float | None = None) -> float | None:
        """Seconds past its timeout, or None while within it (or without one)."""
        if self.deadline is None:
            return None
        over = (time.monotonic() if now is None else now) - self.deadline
        return over if over >= 0 else None


class ThreadWrittenOff(KeyboardInterrupt):
    """Ends a worker thread that was written off; huey's thread loop exits quietly on it."""


@dataclass(frozen=True)
class CurrentJob:
    """The job the calling worker thread is running."""

    id: str
    task: str
    attempt: int
    started_at: float
    interrupt: Interrupt | None = field(default=None, compare=False, repr=False)

    @property
    def cancelled(self) -> bool:
        """True once someone cancelled this job: return (or raise ``JobCancelled``) soon.

        A plain function that keeps running has :data:`~runner.execution.CANCEL_GRACE`
        seconds before ``JobCancelled`` is raised inside it.
        """
        return self.interrupt is not None and self.interrupt.requested


def current_interrupt() -> Interrupt | None:
    """The cancel handle of the attempt this thread runs, else None."""
    attempt: Attempt | None = getattr(_local, "attempt", None)
    return None if attempt is None else attempt.interrupt


def current_job() -> CurrentJob | None:
    """The job running in this thread (inside a task), or whose context this code
    runs in (``asyncio.to_thread`` inside a task), else None."""
    attempt: Attempt | None = getattr(_local, "attempt", None)
    if attempt is None:
        return job_context.get()
    return attempt.current


#: Called in the worker thread after each attempt, while ``current_job()`` still answers.
_attempt_end_hooks: list[Callable[[CurrentJob], None]] = []


def on_attempt_end(hook: Callable[[CurrentJob], None]) -> Callable[[CurrentJob], None]:
    """Register ``hook(job)`` to run after every attempt (flushes of per-job buffers)."""
    if hook not in _attempt_end_hooks:
        _attempt_end_hooks.append(hook)
    return hook


def run_attempt_end_hooks(job: CurrentJob | None) -> None:
    """Run the :func:`on_attempt_end` hooks in this thread (a failing one is logged)."""
    if job is None:
        return
    for hook in _attempt_end_hooks:
        try:
            hook(job)
        except Exception:
            logger.exception("end-of-attempt hook %r failed for job %s", hook, job.id)


def pipeline_ids(task: Any) -> list[str]:
    """The ids of a task and of every later step of its pipeline."""
    ids = []
    while task is not None:
        ids.append(task.id)
        task = getattr(task, "on_complete", None)
    return ids


def stuck_message(attempt: Attempt, over: float, when: str) -> str:
    """Why an attempt was written off, for its error record and the log. The worker
    cannot tell a call into C the timeout cannot interrupt from code that caught the
    timeout and went on: it names both."""
    return (f"did not stop {over:.0f}s past its {attempt.timeout:g}s timeout"
            f"{' ' + when if when else ''}: blocked in a call the timeout cannot interrupt, "
            "or it caught the timeout")


def error_text(exc: BaseException) -> str:
    """What an error says: its ``str()``, else its ``repr()``.

    Task code defines the class, and a ``__str__`` that raises must not stop the
    attempt's outcome from being written (it was run again without end).
    """
    try:
        text = str(exc)
    except Exception:
        return f"<{type(exc).__name__}: str() failed>"
    if text:
        return text
    try:
        return repr(exc)
    except Exception:
        return f"<{type(exc).__name__}: repr() failed>"


def describe_failure(exc: BaseException, kind: str, started_at: float | None) -> FailureInfo:
    """The recorded form of an exception: its traceback from the task's own first frame."""
    return FailureInfo(kind=kind, error_type=type(exc).__name__, message=error_text(exc),
                       traceback="".join(_task_traceback(exc).format()), started_at=started_at)


#: Where the code that runs a task lives: huey, this package, asyncio (``async def`` tasks).
#: The frames of a failed attempt's traceback up to the task's own are theirs, the same for
#: every job (ten of them for an ``async def`` task), and are left out of what is stored.
_MACHINERY = tuple(str(Path(module.__file__).parent) + os.sep
                   for module in (huey, asyncio, sys.modules[__package__]))


#: What the runner raises in place of the task's own exception, once the task was stopped.
_RAISED_FOR_THE_TASK = (TaskTimeout, JobCancelled, TaskAborted)


def _task_traceback(exc: BaseException) -> traceback.TracebackException:
    """``exc`` with its traceback from the task's first frame.

    An error the runner raises for the task (a timeout, a cancel, a ``SystemExit`` made
    :class:`~runner.errors.TaskAborted`) has only the runner's frames: it was raised after
    the task's code was interrupted, by an exception of its chain. It is shown with that
    exception's frames, from the task's first frame to where it was interrupted, and that
    exception's own chain; the rest of the chain is how the runner caught it.
    """
    shown = traceback.TracebackException(type(exc), exc, _from_the_task(exc.__traceback__))
    if not isinstance(exc, _RAISED_FOR_THE_TASK) or _task_frame(exc.__traceback__) is not None:
        return shown  # an error of the runner's own keeps how it came about
    inner = _interrupted(exc)
    if inner is not None:
        found = traceback.TracebackException(type(inner), inner,
                                             _from_the_task(inner.__traceback__))
        shown.stack = found.stack
        shown.__cause__, shown.__context__ = found.__cause__, found.__context__
        shown.__suppress_context__ = found.__suppress_context__
    return shown


def _interrupted(exc: BaseException) -> BaseException | None:
    """The nearest exception of ``exc``'s chain (suppressed links too) raised in a frame
    of the task, or None."""
    seen = {id(exc)}
    links = [exc.__cause__, exc.__context__]
    while links:
        link = links.pop(0)
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        if _task_frame(link.__traceback__) is not None:
            return link
        links += [link.__cause__, link.__context__]
    return None


def _task_frame(tb: TracebackType | None) -> TracebackType | None:
    """The first entry of ``tb`` outside :data:`_MACHINERY`, or None."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_MACHINERY):
        tb = tb.tb_next
    return tb


def _from_the_task(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` from its first frame outside :data:`_MACHINERY`; whole when it has none (the
    error is the runner's own, or a task of its own failed)."""
    return _task_frame(tb) or tb
