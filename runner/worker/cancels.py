"""Cancel requests for the jobs this worker holds: found by polling, acted on at once.

``python -m runner cancel ID`` (or the dashboard) records a request for a running
job; every :data:`POLL` seconds while this process holds jobs, the watch reads
the requests of those jobs (primary-key reads, none at all while no request
exists) and stops each attempt through its :class:`~runner.execution.Interrupt`:
an ``async def`` job is cancelled at its current ``await``, a plain function
sees ``current_job().cancelled`` and has ``CANCEL_GRACE`` seconds to return
before ``JobCancelled`` is raised inside it. A job claimed ahead that has not
started yet never starts. Either way the job ends ``cancelled``, the reason
naming who cancelled it.
"""

from __future__ import annotations

import logging
import threading

from runner.runner_huey import RunnerHuey
from runner.store.job_storage import JobStorage

logger = logging.getLogger(__name__)

#: Seconds between two looks at the requests.
POLL = 0.25


class CancelWatch:
    """A daemon thread with ``start()``/``stop()``; one :meth:`check` per :data:`POLL`."""

    def __init__(self, huey: RunnerHuey, storage: JobStorage) -> None:
        self.huey = huey
        self.storage = storage
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="runner-cancels", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                self.check()
            except Exception:
                logger.exception("looking for cancel requests failed")

    def check(self) -> int:
        """Stop the attempts whose cancel was requested; returns how many were found."""
        held = self.storage.inflight_ids()
        if not held:
            return 0
        requests = self.storage.store.cancel_requests(held)
        if not requests:
            return 0
        running = {a.claimed.id: a for a in self.huey.running_attempts()}
        for job_id, by in requests.items():
            attempt = running.get(job_id)
            if attempt is None:
                self.storage.note_cancel(job_id, by)
            elif not attempt.interrupt.requested:
                logger.warning("job %s (%s) cancelled by %s: stopping it", job_id,
                               attempt.current.task if attempt.current else "?", by)
                attempt.interrupt.request(by)
        return len(requests)
