"""huey's key/value store (results, revocations, locks, counters) on Redis.

Results live in the ``kv`` hash (the one the outcome scripts write a job's
result into), revocations in ``revoked``; a key written with a TTL (huey's ``lock_task``) is a
string ``kvt:<key>`` that Redis expires; counters are the ``counter`` hash.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from huey.constants import EmptyData
from huey.storage import BaseStorage

from runner.store.redis import RedisStore


class RedisKeyValue(BaseStorage):
    """The key/value and introspection methods huey calls, on a :class:`RedisStore`."""

    store: RedisStore
    _revocations: bool = True
    _revocation_writes: int = 0

    def _kv(self, key: str = "") -> str:
        # Revocations apart, so a claim can tell in one read whether any exist.
        return self.store.k("revoked" if key.startswith(("r:", "rt:")) else "kv")

    def _ttl_key(self, key: str) -> str:
        return self.store.k("kvt", key)

    # -- queue introspection ---------------------------------------------------------------

    def _waiting(self, due: bool, limit: int | None) -> list[str]:
        r, now = self.store.r, time.time()
        low, high = ("-inf", now) if due else (f"({now}", "+inf")
        ids: list[str] = []
        for queue in sorted(q.decode() for q in r.smembers(self.store.k("queues"))):
            ids += [i.decode() for i in r.zrangebyscore(self.store.k("waitall", queue), low, high)]
        return ids[:limit] if limit else ids

    def queue_size(self) -> int:
        return len(self._waiting(True, None))

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        return self._data(self._waiting(True, limit))

    def schedule_size(self) -> int:
        return len(self._waiting(False, None))

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        return self._data(self._waiting(False, limit))

    def _data(self, ids: Sequence[str]) -> list[bytes]:
        pipe = self.store.r.pipeline(transaction=False)
        for i in ids:
            pipe.get(self.store.k("data", i))
        return [d for d in pipe.execute() if d is not None]

    # -- key/value -----------------------------------------------------------------------

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        if key.startswith(("r:", "rt:")):
            self._revocations = True
            self._revocation_writes += 1
        self.store.r.hset(self._kv(key), key, value)

    def peek_data(self, key: str) -> bytes | object:
        value = self.store.r.hget(self._kv(key), key)
        if value is None:
            value = self.store.r.get(self._ttl_key(key))
        return EmptyData if value is None else value

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        pipe = self.store.r.pipeline(transaction=False)
        for key in keys:
            pipe.hget(self._kv(key), key)
        return {k: v for k, v in zip(keys, pipe.execute(), strict=True) if v is not None}

    def pop_data(self, key: str) -> bytes | object:
        pipe = self.store.r.pipeline(transaction=True)
        pipe.hget(self._kv(key), key)
        pipe.hdel(self._kv(key), key)
        pipe.getdel(self._ttl_key(key))
        value, _, timed = pipe.execute()
        found = value if value is not None else timed
        return EmptyData if found is None else found

    def has_data_for_key(self, key: str) -> bool:
        return bool(self.store.r.hexists(self._kv(key), key)
                    or self.store.r.exists(self._ttl_key(key)))

    def delete_data(self, key: str) -> bool:
        return bool(self.store.r.hdel(self._kv(key), key)
                    + self.store.r.delete(self._ttl_key(key)))

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        if self.store.r.hexists(self._kv(key), key):
            return False
        if ttl:
            return bool(self.store.r.set(self._ttl_key(key), value, nx=True,
                                         px=max(1, int(ttl * 1000))))
        if self.store.r.exists(self._ttl_key(key)):
            return False
        return bool(self.store.r.hsetnx(self._kv(key), key, value))

    def incr(self, key: str, amount: int = 1) -> int:
        return int(self.store.r.hincrby(self.store.k("counter"), key, amount))

    def delete_counter(self, key: str) -> None:
        self.store.r.hdel(self.store.k("counter"), key)

    def result_store_size(self) -> int:
        return int(self.store.r.hlen(self._kv()))

    def result_items(self) -> dict[str, bytes]:
        return {k.decode(): v for k, v in self.store.r.hgetall(self._kv()).items()}

    def flush_results(self) -> None:
        self.store.r.delete(self._kv(), self.store.k("revoked"))

    def flush_counters(self) -> None:
        self.store.r.delete(self.store.k("counter"))
