"""What a producer does at a full queue: ``[queues.NAME] on_full`` applied to an enqueue.

The store enforces each queue's bound inside the write (``reject`` and
``block`` refuse, ``drop_oldest`` cancels the oldest waiting jobs); this is the
producer's side of ``block``: write what fits, then wait for room and give up
with ``QueueFull`` once ``block_timeout`` passes without room for the next job
(that last refusal is counted as a rejection).

A draining queue has room again within milliseconds, so the producer first
looks a few times (after 5, 10 and 20 ms). A longer wait sleeps on the store's
room wake-up (:meth:`Store.room_waiter`: a socket, ``LISTEN`` or pub/sub),
which a worker pokes when its claim takes jobs out of the waiting state, and
looks again at least every ``[worker] poll_interval`` in case a wake-up is
lost. The waiter is made before the next look, so room made between a look
and the sleep still wakes it; the quick looks first spare a producer at a
busy queue a waiter per call (a connection, on PostgreSQL). A store without
a waiter is polled with a growing pause (up to 250 ms).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from runner.config import Settings
from runner.errors import QueueFull
from runner.store.backend import Store
from runner.store.handle import RoomWaiter
from runner.store.job_rows import Enqueued, NewJob, QueueBound, queue_full
from runner.store.rows import JobFilter
from runner.store.states import JobState

logger = logging.getLogger(__name__)

_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.25
#: Seconds of quick looks at a full queue (three: 5, 10, 20 ms) before a waiter is made.
_QUICK_LOOKS = 0.03


def bounds_for(settings: Settings, jobs: Sequence[NewJob], *,
               give_up: bool = False) -> dict[str, QueueBound]:
    """Each queue of ``jobs`` with its bound and policy (``block`` as ``reject`` to give up).

    Empty when no queue is bounded (the default): the store then reads no count.
    """
    if not settings.bounded:
        return {}
    global _known
    known = _known
    if known is None or known[0] is not settings:
        known = _known = (settings, {})
    made = known[1]
    bounds = {}
    for queue in {j.queue for j in jobs}:
        bound = made.get((queue, give_up))
        if bound is None:
            section = settings.queue_section(queue)
            on_full = "reject" if give_up and section.on_full == "block" else section.on_full
            bound = made[queue, give_up] = QueueBound(section.bound(settings.worker.queue_size),
                                                      on_full)
        bounds[queue] = bound
    return bounds


#: The bounds made for the last settings seen, by queue and ``give_up``: the same for
#: every enqueue until the settings change (a new object; they are frozen).
_known: tuple[Settings, dict[tuple[str, bool], QueueBound]] | None = None


def _room_waiter(store: Store) -> RoomWaiter | None:
    try:
        return store.room_waiter()
    except Exception:  # the wake-up is an optimisation: poll without it
        logger.debug("no room wake-up; polling", exc_info=True)
        return None


def _explained(store: Store, exc: QueueFull) -> QueueFull:
    """``exc`` split into ready and later jobs, with advice for a paused queue.

    Read once, when the call gives up (not at each look of a blocked call): the
    count of a full queue's ready jobs is at most its bound's rows of one index.
    The advice is a courtesy: a store that cannot tell leaves the message as it was.
    """
    queue = exc.queue
    if queue is None or not exc.bound:
        return exc
    try:
        ready = store.count_jobs(JobFilter(queue=queue, state=JobState.AVAILABLE.value))
        paused = any(p.kind == "queue" and p.name == queue and p.paused
                     for p in store.list_pauses())
    except Exception:  # the refusal stands whatever this read meets
        logger.debug("queue %r: no breakdown for the refusal", queue, exc_info=True)
        return exc
    return queue_full(queue, exc.waiting, exc.bound, exc.adding, ready=ready, paused=paused)


def enqueue_with_room(store: Store, settings: Settings, jobs: Sequence[NewJob], *,
                      now: Callable[[], float] = time.time,
                      clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep,
                      on_written: Callable[[int], None] | None = None) -> Enqueued:
    """Write ``jobs`` in order, waiting for room in ``block`` queues (see module docstring).

    Jobs are written whole while they fit; at a ``block`` queue that has some
    room, as many as fit are written first. ``on_written(n)`` runs after each write
    of ``n`` jobs.

    Raises:
        QueueFull: a ``reject`` queue is full, or a ``block`` queue stayed full for
            its ``block_timeout``; the jobs written before stay written.
    """
    if jobs and not settings.bounded:  # nothing can refuse the write: no room to wait for
        result = store.enqueue(jobs, now=now())
        if on_written is not None:
            on_written(len(jobs))
        return result
    duplicates: dict[str, str] = {}
    dropped: list[str] = []
    pending = list(jobs)
    size = len(pending)
    deadline: float | None = None
    pause = _FIRST_PAUSE
    give_up = False
    waiter: RoomWaiter | None = None
    asked = False
    looked = 0.0
    try:
        while pending:
            part = pending[:size]
            try:
                result = store.enqueue(part, now=now(), queue_size=settings.worker.queue_size,
                                       bounds=bounds_for(settings, part, give_up=give_up))
            except QueueFull as exc:
                section = settings.queue_section(exc.queue or "default")
                if give_up and section.on_full == "block":
                    told = _explained(store, exc)
                    raise QueueFull(f"waited {section.block_timeout:g}s (block_timeout) for "
                                    f"room: {told}", queue=exc.queue, room=exc.room) from None
                if give_up or exc.queue is None or section.on_full != "block":
                    raise _explained(store, exc) from None
                if exc.room > 0:
                    size = exc.room
                    continue
                if deadline is None:
                    deadline = clock() + section.block_timeout
                if not asked and looked >= _QUICK_LOOKS:
                    asked = True  # listen first, then look again: no wake-up falls between
                    waiter = _room_waiter(store)
                    continue
                left = deadline - clock()
                if left <= 0:
                    give_up = True  # one last try, counted as a rejection if still full
                    continue
                if waiter is not None:
                    waiter.wait(min(settings.worker.poll_interval, left))
                else:
                    pause_now = min(pause, left)
                    sleep(pause_now)
                    looked += pause_now
                    pause = min(pause * 2, _LONGEST_PAUSE)
                continue
            duplicates.update(result.duplicates)
            dropped.extend(result.dropped)
            pending = pending[len(part):]
            size, deadline, pause, give_up = len(pending), None, _FIRST_PAUSE, False
            looked = 0.0
            if on_written is not None:
                on_written(len(part))
    finally:
        if waiter is not None:
            waiter.close()
    return Enqueued(duplicates, tuple(dropped))
