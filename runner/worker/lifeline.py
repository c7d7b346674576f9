"""The lifeline thread: heartbeats, lease extension and the orphan reaper.

Runs inside every ``run.py`` process. Each pass (every ``heartbeat_interval``,
and at once when a running job passes its timeout or its timeout plus
``stuck_grace``, so that ``health`` and the write-off do not wait for the next
beat) records the worker's liveness and resources, extends the leases of the jobs it
runs (and of those whose outcome is not written yet), warns of a running job whose
lease another worker took (:mod:`runner.worker.lease_watch`), writes such outcomes,
writes off jobs stuck past their timeout (:mod:`runner.worker.stalls`), and returns
orphaned jobs to the queue: those of dead workers, and those whose lease expired
under a live worker not running them (a file restored from a backup). A lease
that expired while this worker's own heartbeats were held back (a lock, the
database away) is given as long again (:mod:`runner.worker.write_gaps`). The
heartbeat's own round trip also reads the server's clock and says which leases
this worker still holds: the clock check (:mod:`runner.worker.clock_check`) and
the lease watch need no read of their own. Leases are judged by the offset just
measured, and written by the one measured a heartbeat before; a heartbeat never
shortens a lease, so a clock that jumped back in between does not cut short the
one written before it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psutil

from runner.config import Settings
from runner.pass_failure import log_pass_failure
from runner.store.job_storage import JobStorage
from runner.worker.clock_check import ClockCheck
from runner.worker.lease_watch import LeaseWatch
from runner.worker.stalls import StallWatch
from runner.worker.write_gaps import WriteGaps

logger = logging.getLogger(__name__)


class Lifeline:
    """Background loop with ``start()``/``stop()``; one :meth:`beat` per interval."""

    def __init__(self, storage: JobStorage, settings: Settings, owner: str, *,
                 status: Callable[[], str | None] | None = None,
                 stalls: StallWatch | None = None, clock: ClockCheck | None = None,
                 leases: LeaseWatch | None = None,
                 on_buried: Callable[[list[str]], None] | None = None,
                 register: Callable[[], None] | None = None) -> None:
        self.storage = storage
        #: Writes this worker's row again when a heartbeat found it gone (a restore).
        self.register = register
        self.stalls = stalls
        #: Warns of running jobs whose lease another worker took (after each heartbeat).
        self.leases = leases
        self.clock = clock
        #: Called with the jobs a pass buried (their on_failure is called there).
        self.on_buried = on_buried
        self.settings = settings
        self.owner = owner
        self.status = status
        self.last_beat: float | None = None
        self.last_cpu_percent: float | None = None
        self.started_at = time.time()
        self._progress_at = time.monotonic()
        self._stop = threading.Event()
        #: Set to make the loop look again at when its next pass is due.
        self._wake = threading.Event()
        #: ``time.monotonic()`` of the loop's next pass, as it last planned it.
        self._planned = float("inf")
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()
        self._process.cpu_percent(None)
        #: How long heartbeats were held back lately: the grace recovery gives leases.
        self.gaps = WriteGaps(settings.worker.heartbeat_interval)

    def start(self) -> None:
        """Start beating in a daemon thread."""
        self.started_at = time.time()
        self.gaps = WriteGaps(self.settings.worker.heartbeat_interval)
        self._thread = threading.Thread(target=self._run, name="runner-lifeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def is_alive(self) -> bool:
        """True while the loop runs."""
        return self._thread is not None and self._thread.is_alive()

    def progress_age(self) -> float:
        """Seconds since the loop last started or finished a pass (the watchdog's evidence)."""
        return time.monotonic() - self._progress_at

    def deadline_set(self, deadline: float) -> None:
        """An attempt with a timeout started (in its thread): ``deadline`` is when it
        passes it (``time.monotonic()``). Wakes the loop only if that comes before the
        pass it planned, so a job costs a comparison, not a wake-up."""
        if deadline < self._planned:
            self._wake.set()

    def _next_pass(self, next_beat: float) -> float:
        """When the next pass is due: the next beat, or a stall watch's moment before it."""
        if self.stalls is None:
            return next_beat
        try:
            due = self.stalls.due()
        except Exception:
            log_pass_failure(logger, "looking for jobs near their timeout failed")
            return next_beat
        return next_beat if due is None else min(next_beat, due)

    def _run(self) -> None:
        interval = self.settings.worker.heartbeat_interval
        next_beat = time.monotonic() + interval
        while not self._stop.is_set():
            # An attempt that starts while the next pass is planned wakes the wait: the
            # plan may have read the running attempts before it was among them.
            self._planned = float("inf")
            self._wake.clear()
            self._planned = until = self._next_pass(next_beat)
            left = until - time.monotonic()
            if left > 0:
                self._wake.wait(left)
                continue
            if until < next_beat and not self._stall_seen():
                continue  # the attempt ended in time, as most do: no beat before its turn
            self._progress_at = time.monotonic()
            try:
                self.beat()
            except Exception:
                log_pass_failure(logger, "lifeline pass failed; retrying in %.1fs", interval)
            self._progress_at = time.monotonic()
            next_beat = self._progress_at + interval

    def _stall_seen(self) -> bool:
        """At a stall watch's moment: whether it finds a job to report or write off, which
        the beat that follows publishes (a job that ended before it changes nothing)."""
        assert self.stalls is not None
        written_off = len(self.stalls.written_off)
        try:
            self.stalls.check()
        except Exception:
            log_pass_failure(logger, "looking for stuck jobs failed")
            return True
        return self.stalls.status() is not None or len(self.stalls.written_off) != written_off

    def beat(self, now: float | None = None) -> None:
        """One pass: heartbeat with leases extended, then reap orphans."""
        at = time.time() if now is None else now
        w = self.settings.worker
        if self.stalls is not None:
            try:
                self.stalls.check()  # before the heartbeat: a stuck job's lease is not extended
            except Exception:
                log_pass_failure(logger, "looking for stuck jobs failed")
        lease, offset = w.lease_seconds, None
        if self.clock is not None:
            lease, offset = self.clock.lease(), self.clock.offset
        with self._process.oneshot():
            rss = self._process.memory_info().rss
            cpu = self._process.cpu_percent(None)
        self.last_cpu_percent = cpu
        sent = self.clock.clock() if self.clock is not None else at
        beat = self.storage.store.heartbeat(
            self.owner, self.storage.inflight_ids(), lease_seconds=lease, rss_bytes=rss,
            cpu_percent=cpu, running=self.storage.running_count(),
            processed=self.storage.processed, status=self.status() if self.status else None,
            clock_offset=offset, now=at)
        self.last_beat = at
        held_back = self.gaps.written(lease)
        if held_back is not None and held_back > lease:
            logger.warning("this worker's heartbeats were held back for %.1fs (a lock on the "
                           "database, or the database away): for the next %.0fs, leases are "
                           "given as long again before their jobs count as orphaned",
                           held_back, lease)
        if not beat.known and self.register is not None:
            # The row went with the data (a file restored from a backup): without it,
            # health and the dashboard read this live worker as gone.
            logger.warning("this worker's row is gone from the database (restored from a "
                           "backup?); registering it again")
            self.register()
        judged_at = at
        if self.clock is not None:  # measured on the heartbeat's round trip
            self.clock.record(sent, beat.server_time, self.clock.clock())
            judged_at = self.clock.judging_time(at)
        if self.leases is not None:
            try:
                self.leases.check(beat.held)
            except Exception:
                log_pass_failure(logger, "looking for lost leases failed")
        if self.storage.pending_outcomes:
            # Outcomes a failed write left queued: do not wait for the next claim,
            # which a held queue (disk full, memory) may not make for a long time.
            self.storage.try_flush_acks()
        recovery = self.storage.store.recover_orphans(crash_limit=w.crash_limit, me=self.owner,
                                                     now=judged_at, grace=self.gaps.grace(lease))
        if recovery.requeued or recovery.buried:
            logger.warning("recovered orphaned jobs: %d requeued, %d dead (at crash_limit)",
                           len(recovery.requeued), len(recovery.buried))
            self.storage.wake()
        if recovery.buried and self.on_buried is not None:
            self.on_buried(recovery.buried)
