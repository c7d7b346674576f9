"""Wake-ups over Redis pub/sub: the function that makes a job due publishes on the
prefix's ``wake`` channel, and every listening worker looks again.

A lost wake-up costs at most ``poll_interval`` (the claim loop polls anyway); a
listener that loses its connection reconnects with a growing delay and wakes
its workers once it is back, since jobs may have come while it was away.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import redis

from runner.store.redis.connection import RedisBase

logger = logging.getLogger(__name__)

#: Longest wait between two reconnection attempts, in seconds.
MAX_BACKOFF = 5.0
#: Seconds a listener waits for a message before it looks at its stop flag again (a
#: stop publishes the listener's own stop message, so this bounds only a lost one).
RECEIVE_TIMEOUT = 1.0
#: The start of a stop message: listeners wake only for their own (``stop <token>``).
STOP = b"stop "


class RedisListener:
    """Worker side: a thread that calls ``on_wake`` for every message on the channel."""

    def __init__(self, store: RedisBase, on_wake: Callable[[], None]) -> None:
        self.store = store
        self.on_wake = on_wake
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop_message = STOP + os.urandom(8).hex().encode()

    def start(self) -> bool:
        self._thread = threading.Thread(target=self._run, name="runner-wakeup", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop listening; the thread waits for a message, so it is sent its own stop
        message rather than left to sit out the receive timeout."""
        self._stopping.set()
        if self._thread is not None:
            try:
                self.store.r.publish(self.store.k("wake"), self._stop_message)
            except redis.RedisError:
                pass  # the timeout ends the wait instead
            self._thread.join(2.0)

    def _run(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            pubsub = self.store.r.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.store.k("wake"))
                self.on_wake()  # anything written while we were not listening
                delay = 0.1
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=RECEIVE_TIMEOUT)
                    if message is None or self._stopping.is_set():
                        continue
                    woke = not message["data"].startswith(STOP)  # another's stop: not a job
                    while (message := pubsub.get_message(timeout=0)) is not None:
                        woke = woke or not message["data"].startswith(STOP)  # one per burst
                    if woke:
                        self.on_wake()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                logger.warning("wake-ups from Redis lost (%s); reconnecting in %.1fs",
                               exc, delay)
                self._stopping.wait(delay)
                delay = min(MAX_BACKOFF, delay * 2)
            finally:
                try:
                    pubsub.close()
                except Exception:  # closing a broken connection
                    pass
