"""The watchdog: one thread that raises an exception inside worker threads whose deadline passed.

Timeouts of plain functions, and the backstop of ``async def`` ones (see
:mod:`runner.execution`), are asynchronous exceptions, as Dramatiq's time limit
is: ``PyThreadState_SetAsyncExc`` raises it at the thread's next Python
instruction, so a blocking call into C ends first.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import math
import threading
import time

from runner.errors import TaskTimeout


class Watchdog:
    """One thread that raises TaskTimeout in worker threads whose deadline passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, tuple[int, float, type[BaseException]]] = {}
        self._fired: set[int] = set()
        self._ids = itertools.count(1)
        #: When the watchdog thread wakes next on its own (inf: only when notified).
        self._wakes_at = math.inf
        self._thread = threading.Thread(target=self._run, name="runner-watchdog", daemon=True)
        self._thread.start()

    def arm(self, thread_id: int, deadline: float, timeout: float,
            raises: type[BaseException] = TaskTimeout) -> int:
        """Watch a thread until :meth:`disarm`; returns the token to disarm with.

        The watchdog thread sleeps until the earliest deadline it knew of, so
        it is woken only when this one comes sooner: with one timeout for every
        job (the default 300 s), a new deadline is almost never sooner, and a job
        costs no thread switch (a thread that wakes for a finished attempt's
        deadline just sleeps again until the next one).
        """
        with self._cond:
            heap = self._heap
            # Deadlines of finished attempts are dropped here rather than by waking
            # the thread; a rebuild bounds the heap when timeouts differ.
            while heap and heap[0][1] not in self._armed:
                heapq.heappop(heap)
            if len(heap) > 64 + 2 * len(self._armed):
                self._heap = heap = [e for e in heap if e[1] in self._armed]
                heapq.heapify(heap)
            token = next(self._ids)
            self._armed[token] = (thread_id, timeout, raises)
            heapq.heappush(heap, (deadline, token))
            if deadline < self._wakes_at:
                self._wakes_at = deadline
                self._cond.notify()
            return token

    def disarm(self, token: int) -> bool:
        """Stop watching; True when the timeout fired. Clears a still-pending raise."""
        with self._cond:
            entry = self._armed.pop(token, None)
            fired = token in self._fired
            self._fired.discard(token)
            if fired and entry is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(entry[0]), None)
            return fired

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now
                                      or self._heap[0][1] not in self._armed):
                    deadline, token = heapq.heappop(self._heap)
                    if token in self._armed and token not in self._fired:
                        thread_id, _, raises = self._armed[token]
                        self._fired.add(token)
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(thread_id), ctypes.py_object(raises))
                self._wakes_at = self._heap[0][0] if self._heap else math.inf
                self._cond.wait(self._wakes_at - now if self._heap else None)


_watchdog: Watchdog | None = None
_watchdog_lock = threading.Lock()


def watchdog() -> Watchdog:
    """The process's watchdog, started on first use."""
    global _watchdog
    if _watchdog is None:
        with _watchdog_lock:
            if _watchdog is None:
                _watchdog = Watchdog()
    return _watchdog
