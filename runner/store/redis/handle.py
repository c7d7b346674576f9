"""The open handle on Redis: where it points, wake-ups by pub/sub, data_version.

Wake-ups are pub/sub (:mod:`runner.store.redis.wakeups`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import InvalidResponse
from redis.retry import Retry

from runner.errors import DatabaseUnavailable
from runner.store.redis.codec import integer
from runner.store.redis.room import RedisRoom
from runner.store.redis.url import connect_checking_database
from runner.store.redis.wakeups import RedisListener


class RedisHandle(RedisRoom):
    """:class:`runner.store.handle.StoreHandle` on Redis (room wake-ups: :mod:`.room`)."""

    readonly_handle = False

    @property
    def location(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        shown = f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}"
        return f"{shown}{parts.path} (prefix {self.prefix})"

    def reach(self, seconds: float) -> None:
        """One PING within ``seconds`` on a connection of its own and no reconnects (the
        store's client rides out a restart: about 6 s of them), or raise.

        Raises:
            DatabaseUnavailable: the server did not answer in time, with what was said, or
                what answered is not Redis (another service's port).
        """
        quick = redis.Redis.from_url(
            self.url, socket_connect_timeout=seconds, socket_timeout=seconds,
            redis_connect_func=connect_checking_database(self.url),
            retry=Retry(NoBackoff(), 0), retry_on_error=[])
        try:
            quick.ping()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise DatabaseUnavailable(
                f"{self.location}: cannot connect to Redis within {seconds:g}s "
                f"({str(exc).rstrip('.')}); is the server up and the URL right?") from None
        except InvalidResponse as exc:
            raise DatabaseUnavailable(
                f"{self.location}: the server there does not answer as Redis does "
                f"({str(exc).rstrip('.')}); is the URL right (another service's port)?"
            ) from None
        finally:
            quick.close()

    @property
    def address(self) -> str:
        return f"{self.url}{'&' if '?' in self.url else '?'}prefix={self.prefix}"

    @property
    def readonly(self) -> bool:
        return self.readonly_handle

    def intake_waiting(self) -> bool:
        return False

    def absorb_intake(self) -> None:
        return None

    def set_queue_weights(self, weights: Mapping[str, int]) -> None:
        return None

    def refresh(self) -> None:
        """Nothing to drop: every read is its own command."""

    def wakeup(self) -> None:
        if getattr(self._published, "woke", False):
            # This thread's enqueue just published it in the same step: one round trip
            # per enqueue, not two.
            self._published.woke = False
            return
        try:
            self.r.publish(self.k("wake"), b"1")
        except redis.RedisError:  # never raises: the workers' poll finds the jobs anyway
            pass

    def offload_checkpoints(self) -> Callable[[], None] | None:
        return None  # the server keeps its own log

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None] | None:
        listener = RedisListener(self, on_wake)
        return listener.stop if listener.start() else None

    def data_version(self) -> int:
        return integer(self.r.get(self.k("version")))
