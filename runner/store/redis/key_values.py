"""huey's key/value store (results, revocations, locks) and named counters on Redis.

Results live in the ``kv`` hash (the one the outcome functions write a job's
result into), revocations in ``revoked`` (so a claim tells in one read whether
any exist). A key written with a TTL (huey's ``lock_task``) has its expiry,
relative to the caller's clock, in ``kvexp``; an expired key reads as missing
and is taken over by the next ``kv_put_if_empty``. A revocation's write time, by the
server's clock, is in ``revat``: a clear given a time leaves one written after it.
Counters are the ``counter`` hash.
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.store.redis.codec import arg, decoded, integer, number
from runner.store.redis.connection import RedisBase


class RedisKeyValues(RedisBase):
    """:class:`runner.store.key_values.KeyValuesStore` on Redis."""

    def _kv(self, key: str) -> str:
        return self.k("revoked" if _is_revocation(key) else "kv")

    def _live(self, key: str, value: bytes | None, expires: bytes | None,
              now: float) -> bytes | None:
        return None if value is None or (expires is not None and float(expires) < now) \
            else value

    def kv_put(self, key: str, value: bytes) -> None:
        if _is_revocation(key):
            self.run("put_revocation", key, value)
            return
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._kv(key), key, value)
        pipe.hdel(self.k("kvexp"), key)
        pipe.execute()

    def kv_peek(self, key: str, *, now: float) -> bytes | None:
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(self._kv(key), key)
        pipe.hget(self.k("kvexp"), key)
        value, expires = pipe.execute()
        return self._live(key, value, expires, now)

    def kv_peek_many(self, keys: Sequence[str], *, now: float) -> dict[str, bytes]:
        if not keys:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            pipe.hget(self._kv(key), key)
            pipe.hget(self.k("kvexp"), key)
        found = pipe.execute()
        values = {k: self._live(k, found[2 * i], found[2 * i + 1], now)
                  for i, k in enumerate(keys)}
        return {k: v for k, v in values.items() if v is not None}

    def kv_pop(self, key: str, *, now: float) -> bytes | None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hget(self._kv(key), key)
        pipe.hget(self.k("kvexp"), key)
        pipe.hdel(self._kv(key), key)
        pipe.hdel(self.k("kvexp"), key)
        pipe.hdel(self.k("revat"), key)
        value, expires, _, _, _ = pipe.execute()
        return self._live(key, value, expires, now)

    def kv_delete(self, key: str, *, now: float, written_by: float | None = None) -> bool:
        if written_by is not None and _is_revocation(key):
            return bool(self.run("clear_revocation", key, arg(float(now)),
                                 arg(float(written_by))))
        pipe = self.r.pipeline(transaction=True)
        pipe.hget(self._kv(key), key)
        pipe.hget(self.k("kvexp"), key)
        pipe.hdel(self._kv(key), key)
        pipe.hdel(self.k("kvexp"), key)
        pipe.hdel(self.k("revat"), key)
        value, expires, _, _, _ = pipe.execute()
        return self._live(key, value, expires, now) is not None

    def kv_put_if_empty(self, key: str, value: bytes, *, ttl: float | None,
                        now: float) -> bool:
        return bool(self.run("kv_put_if_empty", key, value, arg(None if not ttl else float(ttl)),
                             arg(float(now))))

    def kv_items(self) -> dict[str, bytes]:
        items = {k.decode(): v for k, v in self.r.hgetall(self.k("kv")).items()}
        items.update({k.decode(): v for k, v in self.r.hgetall(self.k("revoked")).items()})
        return items

    def kv_count(self) -> int:
        return int(self.r.hlen(self.k("kv"))) + int(self.r.hlen(self.k("revoked")))

    def kv_flush(self) -> None:
        self.r.delete(self.k("kv"), self.k("revoked"), self.k("kvexp"), self.k("revat"))

    def counter_incr(self, key: str, amount: int = 1) -> int:
        return int(self.r.hincrby(self.k("counter"), key, amount))

    def counter_delete(self, key: str) -> None:
        self.r.hdel(self.k("counter"), key)

    def counter_flush(self) -> None:
        self.r.delete(self.k("counter"))

    def waiting_size(self, *, now: float, due: bool) -> int:
        low, high = ("-inf", now) if due else (f"({now}", "+inf")
        return sum(int(self.r.zcount(self.k("waitall", q), low, high))
                   for q in self.waiting_queues())

    def waiting_payloads(self, *, now: float, due: bool, limit: int | None) -> list[bytes]:
        low, high = ("-inf", now) if due else (f"({now}", "+inf")
        ids: list[str] = []
        self._settle()  # rowids order equal due times
        for queue in self.waiting_queues():
            ids += decoded(self.r.zrangebyscore(self.k("waitall", queue), low, high))
        rows = self._fields(ids, "priority", "run_at", "rowid")
        order = sorted(zip(ids, rows, strict=True), key=lambda p: (
            -integer(p[1][0]), number(p[1][1]) or 0.0, integer(p[1][2])) if due
            else (number(p[1][1]) or 0.0, integer(p[1][2])))
        chosen = [i for i, _ in order][:limit] if limit else [i for i, _ in order]
        pipe = self.r.pipeline(transaction=False)
        for job_id in chosen:
            pipe.get(self.k("data", job_id))
        return [d for d in pipe.execute() if d is not None]


def _is_revocation(key: str) -> bool:
    """Whether ``key`` is huey's revocation of a job (``r:``) or of a task (``rt:``)."""
    return key.startswith(("r:", "rt:"))
