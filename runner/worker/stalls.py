"""Jobs stuck past their timeout: reported, then written off so they never stall a worker.

A timeout interrupts Python code, but not one blocking call into C (a long
``time.sleep()``, a socket read without a timeout): such a job runs on past its
timeout and holds its thread. Each lifeline pass looks at the running attempts,
and the lifeline runs one at the moment an attempt passes its timeout or its
timeout plus the grace (:meth:`StallWatch.due`), not only every heartbeat:

* past its timeout (by :data:`SETTLE`, the time its interrupt takes to end a job
  it can end), the job is reported (worker status, so ``health`` says so);
* past its timeout plus ``[worker] stuck_grace``, it is stuck. Its thread is
  written off: the attempt fails by its timeout, as if the timeout had stopped
  it (retried as its task retries a ``TaskTimeout``, else ``dead``; not a crash,
  which is a dead worker's; one someone cancelled ends ``cancelled`` instead, as
  asked), its lease is no longer extended, a new thread takes its place, and the
  old one, should the call ever return, writes nothing and ends. A suspect
  running alone that gets stuck thereby stops holding the rest of the queue.

Threads written off stay blocked in their call until the process ends. Once
more of them are blocked than the worker runs threads, the worker drains and
exits with code 87 so its supervisor starts a fresh process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from runner.attempt import Attempt, stuck_message
from runner.config import Settings
from runner.readmodel.health import overrun_text
from runner.runner_huey import RunnerHuey
from runner.store.job_storage import DRAINING, JobStorage

logger = logging.getLogger(__name__)

#: Seconds past its timeout before a running attempt is reported: the timeout's
#: interrupt ends a job it can interrupt within them, and that job is not stalled.
SETTLE = 0.5


@dataclass(frozen=True)
class WrittenOff:
    """A thread left blocked in a job that was written off."""

    thread: threading.Thread
    job_id: str
    task: str
    since: float


class StallWatch:
    """Finds overrunning and stuck attempts (:meth:`check`) and describes them (:meth:`status`)."""

    def __init__(self, huey: RunnerHuey, storage: JobStorage, settings: Settings, *,
                 on_written_off: Callable[[threading.Thread], None] | None = None) -> None:
        self.huey = huey
        self.storage = storage
        self.settings = settings
        self.on_written_off = on_written_off
        self.written_off: list[WrittenOff] = []
        self._overruns: list[str] = []
        #: ``time.monotonic()`` of the last :meth:`check`: what came due by then was seen.
        self._checked_at = time.monotonic()

    def due(self) -> float | None:
        """When the next :meth:`check` has something new to find (``time.monotonic()``):
        the first moment since the last check that a running attempt is to be reported
        (:data:`SETTLE` past its timeout) or written off (``stuck_grace`` past it); None
        while no attempt has such a moment ahead."""
        grace = self.settings.worker.stuck_grace
        found = None
        for attempt in self.huey.running_attempts():
            if attempt.deadline is None or attempt.abandoned:
                continue
            for at in (attempt.deadline + min(SETTLE, grace), attempt.deadline + grace):
                if at > self._checked_at:
                    found = at if found is None else min(found, at)
                    break
        return found

    def check(self, now: float | None = None) -> None:
        """One pass: write off the stuck attempts, remember the overrunning ones."""
        at = time.monotonic() if now is None else now
        self._checked_at = at  # first: a pass that fails is not run again at once
        grace = self.settings.worker.stuck_grace
        overruns = []
        for attempt in self.huey.running_attempts():
            over = attempt.overrun(at)
            if over is None:
                continue
            if over >= grace and self.write_off(attempt, over):
                continue
            if over < SETTLE:
                continue
            overruns.append(overrun_text(attempt.claimed.id, _task(attempt), over,
                                         attempt.timeout or 0.0))
        self._overruns = overruns
        self.written_off = [w for w in self.written_off if w.thread.is_alive()]

    def write_off(self, attempt: Attempt, over: float) -> bool:
        """Fail a stuck attempt by its timeout and replace its thread; False if it just
        finished."""
        if not self.huey.abandon(attempt):
            return False
        message = stuck_message(attempt, over, "")
        state = self.huey.charge_stuck(attempt, message)
        thread = attempt.thread
        if thread is not None:
            self.storage.retire_thread(thread)
            self.written_off.append(WrittenOff(thread, attempt.claimed.id, _task(attempt),
                                               time.monotonic()))
        fate = {"dead": "failed by its timeout and is dead", "retrying": "failed by its "
                "timeout and is retried", "cancelled": "is cancelled, as asked"}.get(
                    state or "", "is recovered")
        logger.error("job %s (%s) %s; thread %s written off and replaced; the job %s",
                     attempt.claimed.id, _task(attempt), message,
                     thread.name if thread else "?", fate)
        if thread is not None and self.on_written_off is not None:
            self.on_written_off(thread)
        return True

    def blocked_threads(self) -> int:
        """Threads written off that are still blocked."""
        return sum(1 for w in self.written_off if w.thread.is_alive())

    def status(self) -> str | None:
        """What is stuck or overrunning, for the worker's status; None when nothing is."""
        parts = list(self._overruns)
        isolating = self.storage.isolating
        if isolating is not None and (parts or isolating[1] >= self.settings.worker.stuck_grace):
            if isolating[0] == DRAINING:
                parts.append(f"a suspect job waits to run alone ({isolating[1]:.0f}s): the "
                             "worker finishes its jobs first and claims nothing else")
            else:
                parts.append(f"suspect job {isolating[0]} runs alone ({isolating[1]:.0f}s): "
                             "the worker claims nothing else")
        blocked = [w for w in self.written_off if w.thread.is_alive()]
        if blocked:
            jobs = ", ".join(f"{w.job_id} ({w.task})" for w in blocked[:3])
            parts.append(f"{len(blocked)} thread(s) written off, still blocked in job(s) "
                         f"{jobs}; a restart frees them")
        return "; ".join(parts) or None


def _task(attempt: Attempt) -> str:
    return attempt.current.task if attempt.current is not None else "?"
