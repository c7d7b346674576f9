"""SQLite: huey's key/value store, counters and queue sizes.

The SQLite side of :mod:`runner.store.key_values`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.store.sqlite import kv as _kv
from runner.store.sqlite import queries as _queries
from runner.store.sqlite.db import Database


class SqliteKeyValues:
    """:class:`runner.store.key_values.KeyValuesStore` on a SQLite file."""

    db: Database

    def kv_put(self, key: str, value: bytes) -> None:
        _kv.put(self.db, key, value)

    def kv_peek(self, key: str, *, now: float) -> bytes | None:
        return _kv.peek(self.db, key, now)

    def kv_peek_many(self, keys: Sequence[str], *, now: float) -> dict[str, bytes]:
        return _kv.peek_many(self.db, keys, now)

    def kv_pop(self, key: str, *, now: float) -> bytes | None:
        return _kv.pop(self.db, key, now)

    def kv_delete(self, key: str, *, now: float, written_by: float | None = None) -> bool:
        return _kv.delete(self.db, key, now, written_by)

    def kv_put_if_empty(self, key: str, value: bytes, *, ttl: float | None,
                        now: float) -> bool:
        return _kv.put_if_empty(self.db, key, value, ttl, now)

    def kv_items(self) -> dict[str, bytes]:
        return _kv.items(self.db)

    def kv_count(self) -> int:
        return _kv.count(self.db)

    def kv_flush(self) -> None:
        _kv.flush(self.db)

    # -- named counters ------------------------------------------------------------------

    def counter_incr(self, key: str, amount: int = 1) -> int:
        return _kv.incr(self.db, key, amount)

    def counter_delete(self, key: str) -> None:
        _kv.delete_counter(self.db, key)

    def counter_flush(self) -> None:
        _kv.flush_counters(self.db)

    # -- queue introspection -------------------------------------------------------------

    def waiting_size(self, *, now: float, due: bool) -> int:
        return _queries.waiting_size(self.db, now=now, due=due)

    def waiting_payloads(self, *, now: float, due: bool, limit: int | None) -> list[bytes]:
        return _queries.waiting_payloads(self.db, now=now, due=due, limit=limit)
