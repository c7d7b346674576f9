"""``runner.progress(done, total=None, message=None)``: progress of the running job.

Called inside a task (plain or ``async def``), it records the values on the
job's row (``progress_done``, ``progress_total``, ``progress_message``), where
``python -m runner jobs/show``, the dashboard and :func:`get_progress` read
them. Writes are throttled to one per ``MIN_INTERVAL`` per job; a throttled
value is written by the worker's housekeeping pass (:func:`flush_progress`)
or when the attempt ends, so the last value is always stored. Outside a job
(``call_local``, immediate mode, a plain script) it does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from runner.printable import storable
from runner.registry import get_huey
from runner.runner_huey import CurrentJob, current_job, on_attempt_end
from runner.store.backend import Store
from runner.store.job_storage import JobStorage

logger = logging.getLogger(__name__)

#: Seconds between two writes of one job's progress.
MIN_INTERVAL = 0.25


@dataclass(frozen=True)
class Progress:
    """A job's progress as last recorded."""

    done: float
    total: float | None
    message: str | None

    @property
    def fraction(self) -> float | None:
        """``done / total`` when a total is known."""
        return self.done / self.total if self.total else None


@dataclass
class _Pending:
    values: Progress
    written_at: float
    dirty: bool


_state: dict[str, _Pending] = {}
_lock = threading.Lock()


def progress(done: float, total: float | None = None, message: str | None = None) -> None:
    """Record the progress of the job running in this thread, or whose context this code
    runs in (``asyncio.to_thread`` inside a task); a no-op outside a job.

    Args:
        done: units done so far.
        total: units in all, when known.
        message: a short note shown beside the figures.
    """
    job = current_job()
    if job is None:
        return
    values = Progress(float(done), None if total is None else float(total),
                      None if message is None else storable(str(message)[:500]))
    now = time.monotonic()
    with _lock:
        pending = _state.get(job.id)
        if pending is not None and now - pending.written_at < MIN_INTERVAL:
            pending.values, pending.dirty = values, True
            return
        _state[job.id] = _Pending(values, now, False)
    _write(job.id, values)


def flush_progress() -> int:
    """Write every throttled value now; returns how many jobs were written."""
    with _lock:
        due = [(job_id, p.values) for job_id, p in _state.items() if p.dirty]
        for job_id, _ in due:
            _state[job_id].dirty, _state[job_id].written_at = False, time.monotonic()
    for job_id, values in due:
        _write(job_id, values)
    return len(due)


def get_progress(job_id: str, store: Store | None = None) -> Progress | None:
    """The recorded progress of a job (read from ``store``, default the runner's), or None
    when it never reported any."""
    job = (store or _jobs().store).get_job(job_id)
    if job.progress_done is None:
        return None
    return Progress(job.progress_done, job.progress_total, job.progress_message)


@on_attempt_end
def _finish(job: CurrentJob) -> None:
    with _lock:
        pending = _state.pop(job.id, None)
    if pending is not None and pending.dirty:
        _write(job.id, pending.values)


def _write(job_id: str, values: Progress) -> None:
    try:
        _jobs().store.set_progress(job_id, values.done, values.total, values.message)
    except Exception as exc:  # progress is advisory: never fail the task for it
        logger.warning("could not record progress of job %s: %s", job_id, exc)


def _jobs() -> JobStorage:
    jobs = get_huey().jobs
    if jobs is None:
        raise RuntimeError("progress needs the jobs database (not in immediate mode)")
    return jobs
