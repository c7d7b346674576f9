"""Tie log output to the job that produced it.

* :class:`JobContextFilter` stamps every record with ``job_id``, ``task_name``
  and a ``job`` text (" [task job=ID]", or "" outside a job), from
  :func:`runner.app.current_job` of the emitting thread.
* :class:`OutputProxy` replaces ``sys.stdout``/``sys.stderr`` in the worker:
  a line printed by a worker thread while it runs a job becomes a log record of
  logger ``stdout``/``stderr`` (so it is stamped, filed and stored like any
  other); everything else passes straight through to the real stream. Partial
  lines are kept per thread and flushed when the attempt ends.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, TextIO

from runner.runner_huey import CurrentJob, current_job, on_attempt_end

_guard = threading.local()


class JobContextFilter(logging.Filter):
    """Adds ``job_id``, ``task_name`` and ``job`` to each record; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job", None) is None:
            job = current_job()
            if job is None:
                record.job_id = None
                record.task_name = None
                record.job = ""
            else:
                record.job_id = job.id
                record.task_name = job.task
                record.job = f" [{job.task} job={job.id}]"
        return True


class OutputProxy:
    """A thread-aware text stream: job threads' lines become log records."""

    def __init__(self, original: TextIO, name: str, level: int) -> None:
        self.original = original
        self.name = name
        self.level = level
        self.logger = logging.getLogger(name)
        self._local = threading.local()

    def write(self, text: str) -> int:
        if getattr(_guard, "busy", False) or current_job() is None:
            return self.original.write(text)
        pending = getattr(self._local, "pending", "") + text
        if "\n" in pending:
            *lines, pending = pending.split("\n")
            for line in lines:
                self._emit(line)
        self._local.pending = pending
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.flush_pending()
        self.original.flush()

    def flush_pending(self) -> None:
        """Emit this thread's unfinished line, if any (end of an attempt)."""
        pending = getattr(self._local, "pending", "")
        if pending:
            self._local.pending = ""
            self._emit(pending)

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        _guard.busy = True  # a handler writing to this stream must not loop back here
        try:
            self.logger.log(self.level, line.rstrip("\r"))
        finally:
            _guard.busy = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


def original_stream(name: str) -> TextIO:
    """The real ``sys.stdout``/``sys.stderr`` under any installed proxy."""
    stream = getattr(sys, name)
    while isinstance(stream, OutputProxy):
        stream = stream.original
    return stream


def install_output_capture() -> None:
    """Replace ``sys.stdout``/``sys.stderr`` with proxies (idempotent)."""
    if not isinstance(sys.stdout, OutputProxy):
        sys.stdout = OutputProxy(sys.stdout, "stdout", logging.INFO)  # type: ignore[assignment]
    if not isinstance(sys.stderr, OutputProxy):
        sys.stderr = OutputProxy(sys.stderr, "stderr", logging.WARNING)  # type: ignore[assignment]


def uninstall_output_capture() -> None:
    """Put the real streams back."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, OutputProxy):
            stream.flush_pending()
            setattr(sys, name, stream.original)


@on_attempt_end
def _flush_job_output(job: CurrentJob) -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, OutputProxy):
            stream.flush_pending()
