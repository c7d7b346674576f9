"""How one attempt of a task function runs: event loops for ``async def``, real timeouts.

* ``async def`` tasks run on an event loop owned by the worker thread (one loop
  per thread, reused across jobs); a timeout cancels the coroutine for real, and
  the watchdog backs it for code that keeps the loop from running; the tasks a
  coroutine leaves running are cancelled as it ends.
* Plain functions get a real timeout too: a watchdog thread raises
  :class:`~runner.errors.TaskTimeout` inside the worker thread once the deadline
  passes (an asynchronous exception, as Dramatiq's time limit does).

What a sync timeout can interrupt: any Python code (loops, calls between Python
functions). What it cannot: a single blocking call into C, such as one long
``time.sleep()``, a socket read without a timeout or a long SQL query; the
exception is raised as soon as that call returns to Python. Use timeouts on
your I/O, or write the task as ``async def``, whose awaits are cancelled at once.
A job still blocked ``stuck_grace`` seconds after its timeout fired is written
off by :mod:`runner.worker.stalls`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from runner.errors import JobCancelled, TaskAborted, TaskTimeout
from runner.watchdog import watchdog

logger = logging.getLogger(__name__)

_local = threading.local()


def thread_loop() -> asyncio.AbstractEventLoop:
    """This worker thread's event loop, created on first use."""
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop


#: Seconds a plain function has, once cancelled, to notice ``current_job().cancelled``
#: and return before :class:`JobCancelled` is raised inside it.
CANCEL_GRACE = 1.0


class Interrupt:
    """Stops one running attempt from another thread: a cancel request.

    The code running the attempt binds how to stop it (cancel the coroutine's
    task; arm the watchdog for a plain function); :meth:`request` from any
    thread sets the flag cooperative code reads and stops it, at once or as
    soon as it is bound.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop: Callable[[], None] | None = None
        self._done = False
        #: Who asked (None until someone does).
        self.requested_by: str | None = None

    @property
    def requested(self) -> bool:
        """True once a cancel was requested."""
        return self.requested_by is not None

    def request(self, by: str) -> None:
        """Ask the attempt to stop (once; later requests, and any after it returned, do nothing)."""
        with self._lock:
            if self.requested_by is not None or self._done:
                return
            self.requested_by = by
            # Under the lock, so :meth:`unbind` waits for it: what ``stop`` arms is then
            # there for the ending attempt to disarm, never left to fire after it.
            if self._stop is not None:
                self._stop()

    def bind(self, stop: Callable[[], None]) -> None:
        """Say how to stop the attempt; stops it now if a request came first."""
        with self._lock:
            self._stop = stop
            requested = self.requested_by is not None
        if requested:
            stop()

    def unbind(self) -> None:
        """The attempt's code has returned: nothing to stop any more."""
        with self._lock:
            self._stop = None
            self._done = True

    def message(self) -> str:
        return f"cancelled by {self.requested_by} while running"


#: Seconds an ``async def`` attempt may keep its loop from running (code that does not
#: await: a CPU loop, a blocking call) past its timeout or a cancel, before the watchdog
#: raises inside that code as it does inside a plain function.
LOOP_GRACE = 1.0


class LoopWatch:
    """Backs the loop's own cancellation of one coroutine with the watchdog.

    A timeout or a cancel stops a coroutine at its ``await``, which takes the loop
    running; code that keeps it from running is not stopped at all. So each is also
    armed on the watchdog, :data:`LOOP_GRACE` seconds later, and disarmed as soon as
    the loop runs again (the coroutine is then stopped at its ``await``).
    """

    def __init__(self) -> None:
        self._thread_id = threading.get_ident()
        self._lock = threading.Lock()
        self._armed: dict[int, type[BaseException]] = {}
        self._fired: type[BaseException] | None = None

    def arm(self, seconds: float, raises: type[BaseException]) -> int:
        """Raise ``raises`` in the loop's thread ``seconds`` + LOOP_GRACE from now (any thread)."""
        after = seconds + LOOP_GRACE
        with self._lock:
            token = watchdog().arm(self._thread_id, time.monotonic() + after, after, raises)
            self._armed[token] = raises
        return token

    def loop_ran(self, token: int) -> None:
        """In the loop: it runs, so the cancel reaches the coroutine; no need to raise."""
        with self._lock:
            raises = self._armed.pop(token, None)
            if raises is not None and watchdog().disarm(token):
                self._fired = self._fired or raises  # it had fired: the loop ran only then

    def finish(self) -> type[BaseException] | None:
        """Disarm what is left; the exception class raised in the thread, if one was."""
        fired = self._fired
        while True:
            try:
                with self._lock:
                    while self._armed:
                        token, raises = next(iter(self._armed.items()))
                        if watchdog().disarm(token):
                            fired = fired or raises
                        del self._armed[token]
                return fired
            except (TaskTimeout, JobCancelled) as exc:  # raised just now, in this very code
                fired = fired or type(exc)


def run_coroutine(factory: Callable[[], Awaitable[Any]], timeout: float | None,
                  interrupt: Interrupt | None = None) -> Any:
    """Run a coroutine on this thread's loop, cancelling it after ``timeout`` seconds.

    A request on ``interrupt`` cancels it at its current ``await``; it then
    raises :class:`JobCancelled`. Code that does not await is interrupted
    :data:`LOOP_GRACE` seconds later (see :class:`LoopWatch`). A BaseException
    that is not an Exception (a ``CancelledError`` of the task's own,
    ``SystemExit``) becomes :class:`TaskAborted`.
    """
    loop = thread_loop()
    watch = LoopWatch() if timeout or interrupt is not None else None

    async def contained() -> Any:
        try:
            return await factory()
        except (Exception, asyncio.CancelledError):
            raise
        except BaseException as exc:
            # asyncio lets SystemExit and KeyboardInterrupt out of the loop itself, which
            # leaves this attempt's tasks pending in it, to resume inside the next job.
            raise TaskAborted(exc) from exc

    async def guarded() -> Any:
        me = asyncio.current_task()
        assert me is not None
        if interrupt is not None and watch is not None:
            def stop() -> None:  # in the cancel watch's thread
                token = watch.arm(0, JobCancelled)
                loop.call_soon_threadsafe(lambda: (watch.loop_ran(token), me.cancel()))
            interrupt.bind(stop)
        expired = False

        def timeout_passed(token: int) -> None:
            nonlocal expired
            expired = True
            watch.loop_ran(token)

        deadline = None
        if timeout and watch is not None:
            deadline = loop.call_later(timeout, timeout_passed, watch.arm(timeout, TaskTimeout))
        try:
            if not timeout:
                return await contained()
            try:
                value = await asyncio.wait_for(contained(), timeout)
            except TimeoutError:
                raise TaskTimeout(f"timeout {timeout:g}s") from None
            if expired:  # it caught its timeout's cancel and returned: a timeout all the same
                raise TaskTimeout(f"timeout {timeout:g}s")
            return value
        except asyncio.CancelledError as exc:
            if interrupt is not None and interrupt.requested:
                raise JobCancelled(interrupt.message()) from None
            raise TaskAborted(exc) from exc  # cancelled by the task's own code, not by us
        finally:
            if deadline is not None:
                deadline.cancel()
            if interrupt is not None:
                interrupt.unbind()

    try:
        return loop.run_until_complete(guarded())
    finally:
        fired = None
        if watch is not None:
            if interrupt is not None:
                interrupt.unbind()  # arms nothing more, even if the coroutine never ended
            fired = watch.finish()
        end_leftovers(loop)
        # Raised inside the task's code, its message is lost, and the code may even have
        # caught it: the attempt ends as it would have at its await.
        if fired is TaskTimeout:
            raise TaskTimeout(f"timeout {timeout:g}s")
        if fired is JobCancelled and interrupt is not None:
            raise JobCancelled(interrupt.message())


#: Seconds the asyncio tasks a coroutine left running have, once cancelled, to finish.
LEFTOVER_GRACE = 1.0


def end_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks a finished coroutine left running in ``loop``, and let them end.

    The loop runs only while a job of its thread runs: a task left in it would
    resume inside the next job (its log lines and errors that job's), or never. As
    ``asyncio.run`` does, it is cancelled as the coroutine that started it ends. One
    still running :data:`LEFTOVER_GRACE` seconds later ignores its cancel: it is
    dropped with the loop (the thread makes a new one).
    """
    left = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not left:
        return
    logger.warning("cancelling %d asyncio task(s) still running as the task ended: %s",
                   len(left), ", ".join(sorted({_task_name(t) for t in left})))
    for leftover in left:
        leftover.cancel()
    done, pending = loop.run_until_complete(asyncio.wait(left, timeout=LEFTOVER_GRACE))
    for leftover in done:
        if not leftover.cancelled() and leftover.exception() is not None:
            loop.call_exception_handler({
                "message": "an asyncio task left running by a task failed",
                "exception": leftover.exception(), "task": leftover})
    if pending:
        logger.warning("%d asyncio task(s) ignored their cancel for %gs: dropped with this "
                       "thread's event loop", len(pending), LEFTOVER_GRACE)
        if getattr(_local, "loop", None) is loop:
            _local.loop = None
        loop.close()


def _task_name(task: asyncio.Task) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or task.get_name()


def run_sync(func: Callable[..., Any], args: tuple, kwargs: dict,
             timeout: float | None, interrupt: Interrupt | None = None) -> Any:
    """Call ``func``, raising TaskTimeout inside it when ``timeout`` passes.

    A request on ``interrupt`` raises :class:`JobCancelled` inside it
    :data:`CANCEL_GRACE` seconds later, unless it has returned by then.
    """
    if not timeout and interrupt is None:
        return func(*args, **kwargs)
    thread_id = threading.get_ident()
    token = watchdog().arm(thread_id, time.monotonic() + timeout, timeout) if timeout else None
    cancel_tokens: list[int] = []
    if interrupt is not None:
        interrupt.bind(lambda: cancel_tokens.append(watchdog().arm(
            thread_id, time.monotonic() + CANCEL_GRACE, CANCEL_GRACE, JobCancelled)))
    fired = cancelled = False
    try:
        return func(*args, **kwargs)
    finally:
        # The exception may be pending but not yet raised; disarming clears it so
        # it can never land in code outside the task. If it lands here, retry.
        while True:
            try:
                if interrupt is not None:
                    interrupt.unbind()
                if token is not None:
                    fired = watchdog().disarm(token) or fired
                    token = None
                while cancel_tokens:
                    cancelled = watchdog().disarm(cancel_tokens[-1]) or cancelled
                    cancel_tokens.pop()
                break
            except TaskTimeout:
                fired = True
            except JobCancelled:
                cancelled = True
        if fired:
            raise TaskTimeout(f"timeout {timeout:g}s")
        if cancelled and interrupt is not None:
            raise JobCancelled(interrupt.message())
