"""A huey Storage over the ``runner_job`` table: claim with a lease instead of delete.

huey's own SQLite storage deletes a message the moment a worker reads it, so a
crash loses it. Here a claim marks the row ``executing`` with an owner and a
lease; the row only reaches a final state when the attempt's outcome is
written. The worker threads of one process share one claimer: whoever finds
the local buffer empty claims for every idle thread in one transaction, and
writes the completions that piled up since in that same transaction, so a busy
worker pays about one commit per batch rather than two per job. Jobs are claimed
ahead of the threads (``prefetch``) only while recent attempts are short: a job
held ahead of a thread busy for seconds waits that long while another worker
may have a thread idle; one held ahead once they are long (the average still reads
short) goes back to the queue before long (``_STALE_AHEAD``). How outcomes are written
is :mod:`runner.store.outcomes`.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from runner.config import Settings
from runner.errors import DatabaseCorrupt, DiskFull, QueueFull
from runner.flow import FlowLimits, full_label, unequal_weights
from runner.pass_failure import PASSING, log_pass_failure
from runner.store.backend import AttemptLog, Store
from runner.store.backpressure import enqueue_with_room
from runner.store.factory import open_store
from runner.store.job_rows import Ack, Claimed, Enqueued, Failed, NewJob
from runner.store.kvstore import KeyValueStore
from runner.store.outcomes import OutcomeWriter
from runner.store.server_clock import ServerClock
from runner.store.states import JobState

logger = logging.getLogger(__name__)

#: What :attr:`JobStorage.isolating` names while a suspect waits for the jobs in flight to
#: finish before it is claimed to run alone.
DRAINING = "(draining)"

#: While attempts are this short on average, a claim takes ``prefetch`` jobs ahead of
#: the threads, or enough for about ``_AHEAD_SECONDS`` of work (at most ``_MAX_AHEAD``):
#: one commit then serves many short jobs, and jobs held ahead start within milliseconds.
#: Longer attempts claim one job per idle thread and none ahead: held behind a busy
#: thread, a job would wait an attempt's length while another worker may be idle.
_SHORT_ATTEMPT = 0.005
_AHEAD_SECONDS = 0.02
_MAX_AHEAD = 64
#: While attempts are short, jobs held ahead are left to the threads already busy
#: (each takes the next as it finishes one) until they have waited this long; then
#: one idle thread takes one, and so on. Every runnable thread contends for the GIL
#: at each SQLite call and write, so waking them all for jobs of 0.1 ms spent more
#: time switching threads than running the jobs.
_SPREAD_AFTER = 0.01
#: A job held ahead that no thread took for this long goes back to the queue, uncharged,
#: and the other workers are woken, if one of its queues had a thread free at its last
#: heartbeat: this worker's threads are all busy (a long job after a run of short ones).
#: Many times the work claimed ahead, so jobs that flow as planned never reach it. With
#: no such worker they stay (handed back, they would only wait for the same threads),
#: and the workers' heartbeats are read again every ``_LOOK_AGAIN`` seconds.
_STALE_AHEAD = max(0.25, 10 * _AHEAD_SECONDS)
_LOOK_AGAIN = 1.0


class JobStorage(OutcomeWriter, KeyValueStore):
    """huey storage whose queue is the jobs table (see module docstring)."""

    blocking = True  # dequeue() waits for work itself; huey must not sleep on top

    def __init__(self, name: str = "runner", *, settings: Settings,
                 store: Store | None = None, lock_wait: float | None = None) -> None:
        super().__init__(name)
        #: The seam every other part of the runner reaches the data through.
        self.store: Store = (store if store is not None
                             else open_store(settings, lock_wait=lock_wait))
        self.settings = settings
        self.owner: str | None = None
        self.queues: tuple[str, ...] = settings.worker.queues
        self.lease_seconds = settings.worker.lease_seconds
        #: The clock of the times other hosts judge: due times, TTLs (see its module).
        self.clock = ServerClock(self.store)
        # The condition's lock taken as it is (a C call) where nothing waits on it.
        self._cond_lock = threading.RLock()
        self._cond = threading.Condition(self._cond_lock)
        self._sleepers = 0  # threads waiting on _cond
        self._buffer: deque[Claimed] = deque()
        # When each job held ahead was claimed (time.monotonic()), by id (see _STALE_AHEAD).
        self._held_since: dict[str, float] = {}
        self._held_watch: threading.Thread | None = None
        # Set to wake the watch at a stop.
        self._held_event = threading.Event()
        self.processed = 0
        """Attempts this process has settled (its heartbeat reports the number)."""
        self._claiming = False
        self._idle = 0
        # When the jobs held ahead were last taken up by a thread that was idle, and
        # whether an idle thread is timing the next one (see _SPREAD_AFTER).
        self._spread_at = 0.0
        self._watching = False
        self._threads = threading.local()
        self._acks: list[Ack] = []
        # Failures a drain could not write (see OutcomeWriter.fail): written at the stop.
        self._failures: list[Failed] = []
        self._ack_lock = threading.Lock()
        self._wake_seq = 0
        self._empty_until = 0.0  # the queue was found empty; until then, with no wake-up ...
        self._empty_seq = -1  # ... since this wake sequence number, nobody claims again
        self._stopping = False
        self._stop_listening: Callable[[], None] | None = None
        self._stop_checkpoints: Callable[[], None] | None = None
        self._inflight: set[str] = set()
        # Task and queue of each claimed job, so completions are counted without a read.
        self._labels: dict[str, tuple[str, str]] = {}
        self._isolating: str | None = None
        self._isolating_since = 0.0
        # Jobs that were in flight when a suspect's hold on this worker (running alone,
        # or waiting for the jobs in flight to finish) reached isolation_limit. They run
        # on as ordinary jobs; while one does, no other suspect can run alone here, so
        # none is waited for: the other jobs are claimed and the suspects left waiting.
        self._outlasting: set[str] = set()
        #: Threads written off while stuck in a job: they never claim again.
        # The threads themselves, not their idents: an ident is reused by a thread started
        # once the first one ended (a written-off thread's replacement, often).
        self._retired: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
        # Whether any revocation exists, as of the last claim. huey looks for
        # revocations of every job it runs; when there are none, skip the reads.
        self._revocations = True
        self._unwritten_deletes = {}
        self._holds: dict[str, str] = {}
        # Mean duration of recent successful attempts (moving average), for the claim size.
        self._mean_attempt = 1.0
        #: The attempts this worker process started, readable after its death.
        self.running: AttemptLog | None = None
        #: The limits claims apply, from settings and the task registry (set by the huey).
        self.limits_source: Callable[[Settings], FlowLimits] | None = None
        # Concurrency limits at their cap as of the last claim (see holds_limit).
        self._full: frozenset[str] = frozenset()
        # Jobs claimed ahead whose cancel was requested before a thread started them.
        self._cancels: dict[str, str] = {}
        #: Called (from a worker thread) when a claim fails because the disk is full.
        self.on_disk_full: Callable[[DiskFull], None] | None = None
        #: Called (from any thread) when a claim or an outcome finds the data damaged.
        self.on_corrupt: Callable[[DatabaseCorrupt], None] | None = None

    # -- producer side ---------------------------------------------------------

    def insert_jobs(self, jobs: Sequence[NewJob], *, now: float | None = None) -> Enqueued:
        """Write new jobs, then wake the workers; a full queue acts per its ``on_full``.

        Returns the jobs not written because of their unique key (see
        :meth:`runner.store.backend.Store.enqueue`). Times (``now``, each ``run_at``)
        are this host's; they are written as the server's (:attr:`clock`).

        Raises:
            QueueFull: a queue is full (``reject``), or stayed full (``block``).
        """
        clock = self.clock
        return enqueue_with_room(self.store, self.settings, clock.jobs(jobs),
                                 now=clock.now if now is None else self._on_server(now),
                                 on_written=lambda n: self.wake())

    def insert_many(self, jobs: Sequence[NewJob], *, batch_size: int = 1000,
                    now: float | None = None) -> Enqueued:
        """Write new jobs in transactions of at most ``batch_size``, waking the workers after each.

        Raises:
            QueueFull: a queue is full (``reject``) or stayed full (``block``); the jobs
                written before stay written (the message says how many).
        """
        clock = self.clock.now if now is None else self._on_server(now)
        duplicates: dict[str, str] = {}
        dropped: list[str] = []
        written = 0

        def wrote(n: int) -> None:
            nonlocal written
            written += n
            self.wake()

        weights = {name: q.weight for name, q in self.settings.queues.items()}
        for start in range(0, len(jobs), batch_size):
            batch = self.clock.jobs(grouped(jobs[start:start + batch_size], weights))
            try:
                result = enqueue_with_room(self.store, self.settings, batch, now=clock,
                                           on_written=wrote)
            except QueueFull as exc:
                raise QueueFull(f"{exc}; {written} of {len(jobs)} jobs were enqueued before",
                                queue=exc.queue, room=exc.room) from None
            duplicates.update(result.duplicates)
            dropped.extend(result.dropped)
        return Enqueued(duplicates, tuple(dropped))

    def _on_server(self, now: float) -> Callable[[], float]:
        return lambda: self.clock.to_server(now)

    def wake(self) -> None:
        """Tell the workers of this process and of every other one to look again."""
        with self._cond_lock:
            self._wake_seq += 1
            if self._sleepers:  # none in a process that only enqueues
                self._cond.notify_all()
        self.store.wakeup()

    def _sleep(self, timeout: float) -> None:
        """Wait on ``_cond`` (held) until notified or ``timeout`` seconds pass."""
        self._sleepers += 1
        try:
            self._cond.wait(timeout)
        finally:
            self._sleepers -= 1

    # -- consumer side: claiming -----------------------------------------------

    def start_consuming(self, owner: str, queues: Iterable[str] = ()) -> None:
        """Become a worker: claims are made in ``owner``'s name; wake-ups are heard."""
        self.owner = owner
        self.queues = tuple(queues) or self.settings.worker.queues
        self._stopping = False
        self.running = self.store.attempt_log(owner)
        # Jobs parked under the limits of an earlier start may have room under these.
        self.store.release_parked()
        self._stop_listening = self.store.listen(self._on_remote_wake)
        self._stop_checkpoints = self.store.offload_checkpoints()
        if self._held_watch is None:
            self._held_watch = threading.Thread(target=self._watch_held, daemon=True,
                                                name="runner-held-watch")
            self._held_watch.start()

    def pause_claims(self) -> None:
        """Stop claiming new jobs now; waiting worker threads return at once."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def hold_claims(self, key: str, reason: str) -> None:
        """Stop claiming until :meth:`release_claims` with the same key (resumable)."""
        with self._cond:
            self._holds[key] = reason
            self._cond.notify_all()

    def release_claims(self, key: str) -> bool:
        """Lift one hold; claiming resumes once no hold is left. True if it was held."""
        with self._cond:
            held = self._holds.pop(key, None) is not None
            if held:  # the guard releases on every check: waking idle claimers each time
                self._wake_seq += 1  # would be a poll in disguise
                self._cond.notify_all()
        return held

    @property
    def holds(self) -> dict[str, str]:
        """Why claiming is held, by key (empty when claiming)."""
        return dict(self._holds)

    def hand_back_unstarted(self) -> list[str]:
        """Stop claiming and hand back the jobs claimed ahead that no thread started (ids).

        A drain calls it as it begins: they go back to the queue for the other workers
        rather than sit ``executing`` here while the running jobs finish. Should the
        write fail, they are kept and the next call tries again.
        """
        with self._cond:
            self._stopping = True
            unstarted = list(self._buffer)
            self._buffer.clear()
            since = {c.id: self._held_since.pop(c.id, 0.0) for c in unstarted}
            self._cond.notify_all()
        self._hand_back(unstarted, since)
        return [c.id for c in unstarted]

    def hand_back_stale(self, now: float | None = None) -> list[str]:
        """Hand back the jobs held ahead that no thread took for ``_STALE_AHEAD`` (ids).

        Every thread is busy, likely with jobs longer than the short ones that had this
        worker claim ahead: they go back to the queue uncharged, as at a drain, and the
        other workers are woken to take them. ``now`` is a ``time.monotonic()`` reading.
        """
        at = time.monotonic() if now is None else now
        with self._cond:
            queues = {self._labels.get(c.id, ("", ""))[1] for c in self._stale(at)}
        if not queues or not self._taker_elsewhere(queues):
            return []
        with self._cond:
            if self._stopping:  # the stop hands them all back
                return []
            stale = self._stale(at)  # less any a thread took meanwhile
            for _ in stale:
                self._buffer.popleft()
            since = {c.id: self._held_since.pop(c.id) for c in stale}
        self._hand_back(stale, since)
        if stale:
            logger.debug("handed back %d jobs claimed ahead that no thread took in %.2fs",
                         len(stale), _STALE_AHEAD)
        return [c.id for c in stale]

    def _stale(self, at: float) -> list[Claimed]:
        """The jobs held ahead since ``_STALE_AHEAD`` before ``at``, oldest first (caller
        holds ``_cond``)."""
        stale = []
        for claimed in self._buffer:  # held in the order claimed: the stale ones lead
            if at - self._held(claimed) < _STALE_AHEAD:
                break
            stale.append(claimed)
        return stale

    def _taker_elsewhere(self, queues: set[str]) -> bool:
        """Whether another worker serving one of ``queues`` had a thread free at its last
        heartbeat (a dead one's row may say so until it is reaped: a needless hand-back)."""
        for w in self.store.list_workers():
            if w.id == self.owner or w.state != "running" or w.running >= w.concurrency:
                continue
            served = set((w.queues or "*").split(","))
            if "*" in served or "" in queues or served & queues:
                return True
        return False

    def _held(self, claimed: Claimed) -> float:
        """When a job held ahead was claimed (caller holds ``_cond``)."""
        return self._held_since.setdefault(claimed.id, time.monotonic())

    def _watch_held(self) -> None:
        """Hands back jobs held ahead as they pass ``_STALE_AHEAD``: in a thread of its
        own, since the worker threads that would notice are the ones busy."""
        me = threading.current_thread()
        while self._held_watch is me:
            with self._cond:
                due = self._held(self._buffer[0]) + _STALE_AHEAD if self._buffer else None
                self._held_event.clear()
            if due is None:
                # Looked at again after as long, rather than woken by each claim: a drain
                # of short jobs claims hundreds of times a second, and each wake-up of
                # this thread would take the interpreter lock from the workers'.
                self._held_event.wait(_STALE_AHEAD)
                continue
            left = due - time.monotonic()
            if left > 0:  # jobs claimed meanwhile are held later: they need no wake-up
                self._held_event.wait(left)
                continue
            try:
                if not self.hand_back_stale():  # no other worker had a thread free (or
                    self._held_event.wait(_LOOK_AGAIN)  # a thread here took them)
            except Exception:
                log_pass_failure(logger, "handing back jobs claimed ahead failed; "
                                 "trying again in %.2fs", _STALE_AHEAD)
                self._held_event.wait(_STALE_AHEAD)

    def _hand_back(self, unstarted: list[Claimed], since: dict[str, float]) -> None:
        if not unstarted:
            return
        try:
            self.store.unclaim([c.id for c in unstarted])
        except BaseException:
            with self._cond:
                self._buffer.extendleft(reversed(unstarted))
                self._held_since.update(since)
            raise
        for c in unstarted:
            self._inflight.discard(c.id)
            self._labels.pop(c.id, None)
        self.store.wakeup()  # idle workers take them now, not at their next poll

    def stop_consuming(self) -> list[str]:
        """Stop claiming; hand back jobs claimed but not started; flush outcomes (kept
        for the next start when they cannot be written: see :meth:`_keep_unwritten`)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        try:
            self.flush_acks()
            self.flush_failures()
        except Exception:
            self._keep_unwritten()
            raise
        unstarted = self.hand_back_unstarted()
        watch, self._held_watch = self._held_watch, None
        if watch is not None:
            self._held_event.set()
            watch.join(5.0)
        if self.running is not None:
            self.running.close()
            self.running = None
        if self._stop_checkpoints is not None:
            self._stop_checkpoints()
            self._stop_checkpoints = None
        return unstarted

    def _keep_unwritten(self) -> None:
        """The last chance to write outcomes failed: keep them where the recovery of this
        worker's jobs writes them (SQLite), rather than let it charge each job a crash
        and run it again."""
        with self._ack_lock:
            acks, failures = list(self._acks), list(self._failures)
        running = self.running
        count = len(acks) + len(failures)
        if not count or running is None:
            return
        try:
            kept = running.keep_outcomes(acks, failures)
        except OSError as exc:
            logger.error("outcomes of %d finished jobs could not be kept either (%s); they "
                         "are recovered as crashed and run again", count, exc)
            return
        if kept:
            logger.warning("outcomes of %d finished jobs kept beside the database; the next "
                           "worker to start writes them, and they do not run again", count)

    def _on_remote_wake(self) -> None:
        with self._cond:
            self._wake_seq += 1
            self._cond.notify_all()

    def claim_next(self) -> Claimed | None:
        """Block until a job is claimed for this thread, or about ``poll_interval`` passes."""
        threads = self._threads
        mine = self._next(idle=getattr(threads, "idle", True))
        threads.idle = mine is None
        return mine

    def _next(self, *, idle: bool) -> Claimed | None:
        # ``idle``: this thread has not just finished a job (it waited, or never ran one).
        poll = self.settings.worker.poll_interval
        with self._cond:
            while True:
                if self._stopping:
                    self._sleep(0.05)  # huey's loop is about to see its stop flag
                    return None
                if self._holds:
                    self._sleep(poll)
                    return None
                if self._buffer:
                    if not idle or not self._claims_ahead():
                        return self._take()
                    late = time.monotonic() - self._spread_at
                    if late >= _SPREAD_AFTER:
                        self._spread_at = time.monotonic()
                        self._cond.notify()  # another idle thread times the next one
                        return self._take()
                    watcher = not self._watching
                    self._watching = True
                    self._idle += 1
                    try:
                        self._sleep(_SPREAD_AFTER - late if watcher else poll)
                    finally:
                        self._idle -= 1
                        if watcher:
                            self._watching = False
                    continue
                if not self._claiming:
                    idle_for = self._empty_until - time.time()
                    if idle_for <= 0 or self._empty_seq != self._wake_seq or self._acks:
                        break
                    # Another thread just found nothing due and nothing was written since:
                    # claiming again would only wake every idle thread in turn (a busy loop).
                    self._idle += 1
                    try:
                        self._sleep(idle_for)
                    finally:
                        self._idle -= 1
                    idle = True
                    continue
                self._idle += 1
                try:
                    self._sleep(poll)
                finally:
                    self._idle -= 1
                idle = True
            self._claiming = True
            want = self._claim_size()
            ahead = self._claims_ahead()
            seq = self._wake_seq
        claimed: list[Claimed] = []
        next_due: float | None = None
        try:
            claimed, next_due = self._claim(want, ahead=ahead)
            self._inflight.update(c.id for c in claimed)
        except DiskFull as exc:
            self.hold_claims("disk", f"disk full: {exc}")
            if self.on_disk_full is not None:
                self.on_disk_full(exc)
        except PASSING:
            log_pass_failure(logger, "claim failed; trying again")
        except DatabaseCorrupt as exc:
            # Every later claim would fail alike (a traceback a poll): claim no more.
            self.hold_claims("corrupt", f"database corrupt: {exc}")
            if self.on_corrupt is None:
                raise
            self.on_corrupt(exc)
        finally:
            with self._cond:
                self._claiming = False
                back: list[Claimed] = []
                if self._stopping:  # a drain began during the claim: none of them starts
                    back, claimed = claimed, []
                mine = claimed[0] if claimed else None
                self._buffer.extend(claimed[1:])
                self._spread_at = time.monotonic()
                self._held_since.update((c.id, self._spread_at) for c in claimed[1:])
                if self._buffer and self._claims_ahead():
                    if not self._watching:  # one idle thread times them; the rest sleep on
                        self._cond.notify()
                else:
                    self._cond.notify_all()
                if mine is None and not self._stopping and seq == self._wake_seq:
                    wait = poll if next_due is None else max(
                        0.0, min(poll, self.clock.to_local(next_due) - time.time()))
                    self._empty_until, self._empty_seq = time.time() + wait, seq
                    self._idle += 1
                    try:
                        self._sleep(wait)
                    finally:
                        self._idle -= 1
        if back:  # a failure leaves them in the buffer, for the stop to try again
            self._hand_back(back, {})
        return mine

    def _take(self) -> Claimed:
        """The next job held here, for this thread (caller holds ``_cond``)."""
        claimed = self._buffer.popleft()
        self._held_since.pop(claimed.id, None)
        return claimed

    def _claim_size(self) -> int:
        """This thread and the idle ones; while jobs are short, ``prefetch`` ahead or more."""
        want = 1 + self._idle
        if self._claims_ahead():
            ahead = int(_AHEAD_SECONDS / max(self._mean_attempt, 0.0003))
            want = max(want + self.settings.worker.prefetch, min(_MAX_AHEAD, ahead))
        return want

    def _claims_ahead(self) -> bool:
        """Claims take jobs ahead of the threads, for the busy ones to take in turn: only
        while recent attempts are short (with ``prefetch`` 0, never). Otherwise each job
        claimed is for an idle thread; a worker starts out taking its jobs for long."""
        return bool(self.settings.worker.prefetch) and self._mean_attempt < _SHORT_ATTEMPT

    def has_future_jobs(self) -> bool:
        """True when some job waits for a later ``run_at`` (scheduled or retrying)."""
        return self.store.has_future_jobs()

    def claim_due(self, want: int = 1) -> list[Claimed]:
        """Claim up to ``want`` due jobs now, without waiting (tests, ``drain()``)."""
        claimed, _ = self._claim(want)
        self._inflight.update(c.id for c in claimed)
        return claimed

    def _claim(self, want: int, *, ahead: bool = False) -> tuple[list[Claimed], float | None]:
        """Write pending completions and claim up to ``want`` due jobs, in one transaction.

        ``ahead``: the jobs are taken ahead of the threads (:meth:`_claims_ahead`), so
        the store may take a claim's queue shares in runs (``JobsStore.claim``).

        A job that was running when a worker died (``crashes > 0``) is a suspect:
        it runs alone in its process, after the jobs in flight finish, so a
        poison job's next crash is counted against it and not its neighbours.
        Neither the wait nor the run alone holds the worker past ``isolation_limit``;
        then the jobs in flight outlast the hold, and suspects wait until they end.
        """
        # Due by the server's clock, which every host shares: a host ahead would start
        # delayed jobs early, one behind hold them late. The lease is written by it too,
        # no shorter than lease_seconds by the server's clock (see runner.clock_drift).
        now = self.clock.now()
        owner = self.owner or "local"
        if self._isolating is not None and not self._isolation_over():
            return [], None
        busy = bool(self._inflight)
        if self._unwritten_deletes:  # before the claim reads whether revocations exist
            self.write_deletes()
        leave = bool(self._outlasting)
        with self._ack_lock:
            acks, self._acks = self._acks, []
        revocations_seen = self._revocation_writes
        try:
            source = self.limits_source
            limits = source(self.settings) if source is not None else None
            result = self.store.claim(now=now, owner=owner, lease_seconds=self.lease_seconds,
                                      want=want, busy=busy, queues=self.queues, acks=acks,
                                      labels=self._labels, limits=limits,
                                      leave_suspects=leave, ahead=ahead)
        except BaseException:
            with self._ack_lock:
                self._acks[:0] = acks
            raise
        if self._revocation_writes == revocations_seen:  # else a revoke raced the claim
            self._revocations = result.revocations
        claimed, next_due = result.claimed, result.next_due
        if leave and not claimed and next_due is not None and next_due <= now:
            # The suspect left waiting is due, and claiming again at once would not take
            # it: look again at the poll, or when an outlasting job ends.
            next_due = None
        if claimed:  # producers blocked at a full queue may go on
            self.store.made_room()
        self._labels.update(result.labels)
        self._full = result.full
        self._settled(a.job_id for a in acks)
        # Nothing claimed and nothing in flight: the suspect went to another worker, or
        # its limit is full. There is nothing to drain, and isolating would leave this
        # worker idle for isolation_limit while jobs wait.
        if result.suspect and (claimed or busy):
            self._isolating = claimed[0].id if claimed else DRAINING
            self._isolating_since = time.monotonic()
        return claimed, next_due

    def holds_limit(self, job_id: str) -> bool:
        """Whether a claimed job holds a slot of a concurrency limit that was at its cap
        when this process last claimed (so others may be waiting for it)."""
        label = self._labels.get(job_id)
        full = self._full
        if not full or label is None:
            return False
        task, queue = label
        return full_label("task", task) in full or full_label("queue", queue) in full

    def _isolation_over(self) -> bool:
        """A suspect has held this worker (run alone, or waited for the jobs in flight) for
        ``isolation_limit``: those jobs outlast the hold, and others are claimed beside them."""
        held = time.monotonic() - self._isolating_since
        if held < self.settings.worker.isolation_limit:
            return False
        if self._isolating == DRAINING:
            logger.warning("a suspect job waited %.0fs for the jobs in flight to finish "
                           "(isolation_limit); claiming other jobs beside them, and suspects "
                           "once they end", held)
        else:
            logger.warning("suspect job %s still runs after %.0fs alone (isolation_limit); "
                           "claiming other jobs beside it, and other suspects once it ends",
                           self._isolating, held)
        self._outlasting.update(self._inflight)
        self._isolating = None
        return True

    @property
    def isolating(self) -> tuple[str, float] | None:
        """(suspect job id, seconds it has run alone) while nothing else is claimed."""
        job_id = self._isolating
        if job_id is None:
            return None
        return job_id, time.monotonic() - self._isolating_since

    def retire_thread(self, thread: threading.Thread) -> None:
        """The thread was written off: if it ever comes back, it claims nothing more."""
        self._retired.add(thread)

    def is_retired(self, thread: threading.Thread) -> bool:
        """True for a thread written off by :meth:`retire_thread`."""
        return bool(self._retired) and thread in self._retired  # asked before every claim

    # -- consumer side: outcomes -----------------------------------------------

    def note_cancel(self, job_id: str, by: str) -> None:
        """A job held here was cancelled before it started: it will not run.

        One still waiting in the prefetch buffer is settled now (a thread may be busy
        with a long job for a while); one a thread took meanwhile is settled by it.
        """
        with self._cond:
            held = next((c for c in self._buffer if c.id == job_id), None)
            if held is not None:
                self._buffer.remove(held)
                self._held_since.pop(job_id, None)
        if held is None:
            self._cancels[job_id] = by
        else:
            self.cancel_unstarted(held, by)

    def cancel_unstarted(self, claimed: Claimed, by: str) -> None:
        """Settle a job claimed here whose cancel came before it started: the claim undone."""
        try:
            self.finish(claimed.id, claimed.attempt, JobState.CANCELLED,
                        f"cancelled by {by} before it started", unstarted=True)
        finally:
            self.release_inflight(claimed.id)

    def take_cancel(self, job_id: str) -> str | None:
        """Who cancelled a job about to start, or None (and forget it)."""
        return self._cancels.pop(job_id, None) if self._cancels else None

    def inflight_ids(self) -> list[str]:
        """Jobs this process holds under lease right now, unwritten outcomes included."""
        with self._ack_lock:
            pending = [a.job_id for a in self._acks]
        return list(self._inflight.union(pending)) if pending else list(self._inflight)

    def running_count(self) -> int:
        """Jobs held that a thread runs now (the rest wait in the prefetch buffer)."""
        return max(0, len(self._inflight) - len(self._buffer))

    def prefetched_count(self) -> int:
        """Claimed jobs waiting in this process for a free thread (part of the in-flight)."""
        return len(self._buffer)

    def release_inflight(self, job_id: str) -> None:
        """The attempt is settled (or could not be): stop extending its lease."""
        if job_id in self._inflight:
            self.processed += 1
        self._inflight.discard(job_id)
        outlasted = bool(self._outlasting)
        if outlasted:
            self._outlasting.discard(job_id)
        if ((self._isolating is not None and (job_id == self._isolating or not self._inflight))
                or (outlasted and not self._outlasting)):  # a suspect may run alone again
            with self._cond:
                self._isolating = None
                self._wake_seq += 1
                self._cond.notify_all()

    @property
    def settings(self) -> Settings:
        """The settings in force (a reload swaps them: :meth:`RunnerHuey.update_settings`)."""
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._settings = settings
        self.store.set_queue_weights({name: q.weight for name, q in settings.queues.items()})

    @property
    def path(self) -> Path:
        """The database file (see :attr:`Store.path`)."""
        return self.store.path

    @property
    def db(self) -> Any:
        """The SQLite backend's :class:`~runner.store.sqlite.db.Database` (tests and tools only;
        AttributeError on another backend)."""
        return self.store.db  # type: ignore[attr-defined]


def grouped(batch: Sequence[NewJob], weights: Mapping[str, int]) -> Sequence[NewJob]:
    """``batch`` with each queue's jobs together (in their order), when its queues have
    unequal weights; else as it is.

    Unequal weights take each queue's jobs at its own pace, so a batch written in
    call order (queues interleaved row by row) would have every claim write pages
    that each queue passes through again later; grouped, each queue's jobs are
    neighbouring rows. Without weights the claim takes jobs across queues in row
    order (same priority, same due time), and a batch with unique keys keeps the
    order that decides which duplicate is written: both are left as called.
    """
    if not unequal_weights({j.queue for j in batch}, weights):
        return batch
    if any(j.unique_key is not None for j in batch):
        return batch
    return sorted(batch, key=lambda j: j.queue)
