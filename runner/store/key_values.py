"""huey's key/value store in the storage seam, with counters and queue introspection.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class KeyValuesStore(Protocol):
    """Results, revocations, locks and counters, and the sizes huey asks about."""

    def kv_put(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` (a result, a revocation, a lock), replacing it; a
        revocation is stamped with the store's clock (see :meth:`kv_delete`)."""
        ...

    def kv_peek(self, key: str, *, now: float) -> bytes | None:
        """The live value of ``key`` (an expired one reads as missing), or None."""
        ...

    def kv_peek_many(self, keys: Sequence[str], *, now: float) -> dict[str, bytes]:
        """The live values of ``keys`` that exist."""
        ...

    def kv_pop(self, key: str, *, now: float) -> bytes | None:
        """Delete ``key`` and return its live value, or None."""
        ...

    def kv_delete(self, key: str, *, now: float, written_by: float | None = None) -> bool:
        """Delete ``key``; True when it held a live value.

        With ``written_by`` (a time of the store's clock), only a revocation written no
        later than that goes: one written since is a newer revoke and stays.
        """
        ...

    def kv_put_if_empty(self, key: str, value: bytes, *, ttl: float | None,
                        now: float) -> bool:
        """Store ``value`` unless ``key`` holds a live one (a lock); True when stored.
        With ``ttl`` the key expires ``ttl`` seconds after ``now``."""
        ...

    def kv_items(self) -> dict[str, bytes]:
        """Every stored key and value."""
        ...

    def kv_count(self) -> int:
        """How many keys are stored."""
        ...

    def kv_flush(self) -> None:
        """Delete every key."""
        ...

    # -- named counters ------------------------------------------------------------------

    def counter_incr(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to a named counter (created at 0); returns the new value."""
        ...

    def counter_delete(self, key: str) -> None:
        """Forget a named counter."""
        ...

    def counter_flush(self) -> None:
        """Forget every named counter."""
        ...

    # -- queue introspection -------------------------------------------------------------

    def waiting_size(self, *, now: float, due: bool) -> int:
        """Waiting jobs due by ``now`` (``due``) or due later (not ``due``)."""
        ...

    def waiting_payloads(self, *, now: float, due: bool, limit: int | None) -> list[bytes]:
        """The payloads of waiting jobs due by ``now`` (in claim order) or later (by time)."""
        ...
