"""Redis: producers blocked at a full queue wait for room on the prefix's ``room`` channel.

A worker that claimed jobs publishes there; ``PUBLISH`` answers how many
listened, so while nobody waits a worker publishes at most a few times a
second. A producer subscribes before it looks at the queue again, and messages
wait in its connection until it reads them: none is lost between two looks.
"""

from __future__ import annotations

import time

import redis

from runner.store.handle import RoomWaiter
from runner.store.redis.connection import RedisBase

#: Seconds a worker stays quiet after a publish nobody heard.
QUIET = 0.25


class PubSubWaiter:
    """One blocked producer's subscription (a :class:`runner.store.handle.RoomWaiter`)."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._pubsub = client.pubsub()
        self._pubsub.subscribe(channel)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:  # subscribed for sure before the caller looks
            message = self._pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "subscribe":
                return
        self._pubsub.close()
        raise redis.TimeoutError(f"no confirmation of the subscription to {channel}")

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            message = self._pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is not None and message["type"] == "message":
                while self._pubsub.get_message(timeout=0) is not None:
                    pass  # a burst of wake-ups is one
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        try:
            self._pubsub.close()
        except redis.RedisError:
            pass


class RedisRoom(RedisBase):
    """:meth:`made_room` and :meth:`room_waiter` of :class:`runner.store.handle.StoreHandle`."""

    _room_quiet_until = 0.0

    def made_room(self) -> None:
        if time.monotonic() < self._room_quiet_until:
            return
        try:
            heard = self.r.publish(self.k("room"), b"1")
        except redis.RedisError:
            return  # the producer's slow poll finds the room anyway
        if not heard:
            self._room_quiet_until = time.monotonic() + QUIET

    def room_waiter(self) -> RoomWaiter | None:
        try:
            return PubSubWaiter(self.r, self.k("room"))
        except redis.RedisError:
            return None
