"""Wake-ups over Redis pub/sub: the function that makes a job due publishes on the
prefix's ``wake`` channel, and every listening worker looks again.

A lost wake-up costs at most ``poll_interval`` (the claim loop polls anyway); a
listener that loses its connection reconnects with a growing delay and wakes
its workers once it is back, since jobs may have come while it was away.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from runner.store.redis.connection import RedisBase

logger = logging.getLogger(__name__)

#: Longest wait between two reconnection attempts, in seconds.
MAX_BACKOFF = 5.0


class RedisListener:
    """Worker side: a thread that calls ``on_wake`` for every message on the channel."""

    def __init__(self, store: RedisBase, on_wake: Callable[[], None]) -> None:
        self.store = store
        self.on_wake = on_wake
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        self._thread = threading.Thread(target=self._run, name="runner-wakeup", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
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
                    if pubsub.get_message(timeout=1.0) is not None:
                        while pubsub.get_message(timeout=0) is not None:
                            pass  # a burst of wake-ups is one
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
