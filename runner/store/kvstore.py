"""The parts of huey's Storage interface that are not the queue itself.

huey keeps results, revocations, locks and counters in a key/value store, and
asks the storage about queue sizes for introspection. Here the key/value store
is ``runner_kv`` and the queue is ``runner_job``; :class:`~runner.store.job_storage.JobStorage`
adds claiming and outcomes on top.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from huey.constants import EmptyData
from huey.storage import BaseStorage

from runner.pass_failure import PASSING
from runner.store.backend import Store
from runner.store.server_clock import ServerClock

logger = logging.getLogger(__name__)


class KeyValueStore(BaseStorage):
    """Key/value and introspection methods huey calls; needs ``self.store``."""

    store: Store
    #: Due times and TTLs (huey's locks) are judged by every host: read the server's clock.
    clock: ServerClock
    #: Whether any revocation may exist: refreshed at every claim, set by every revoke.
    #: Only the revocation check of a job this process just claimed may skip reading
    #: when it is False (see RunnerHuey.is_revoked); every other read goes to the table.
    _revocations: bool = True
    #: Revocations written by this process; a claim that overlaps one keeps the flag set.
    _revocation_writes: int = 0
    #: Revocation keys to clear once the database answers (see :meth:`delete_later`), each
    #: with the server's time its clear was decided at; a dict whose single operations
    #: need no lock between threads.
    _unwritten_deletes: dict[str, float]

    def enqueue(self, data: bytes, priority: int | None = None) -> None:
        raise NotImplementedError("jobs are written through RunnerHuey.enqueue")

    def dequeue(self) -> bytes | None:
        raise NotImplementedError("jobs are claimed through RunnerHuey.dequeue")

    # A job waits in the queue (pending) once it is due, and in the schedule until
    # then: a delayed job and a retry waiting out its delay are both "scheduled".
    def queue_size(self) -> int:
        return self.store.waiting_size(now=self.clock.now(), due=True)

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        return self.store.waiting_payloads(now=self.clock.now(), due=True, limit=limit)

    def flush_queue(self) -> None:
        self.store.cancel_waiting(now=self.clock.now(), reason="queue flushed", due=True)

    def add_to_schedule(self, data: bytes, ts: object) -> None:
        raise NotImplementedError("scheduled jobs are rows with a future run_at")

    def read_schedule(self, ts: object) -> list[bytes]:
        return []  # due jobs are claimed straight from the jobs

    def schedule_size(self) -> int:
        return self.store.waiting_size(now=self.clock.now(), due=False)

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        return self.store.waiting_payloads(now=self.clock.now(), due=False, limit=limit)

    def flush_schedule(self) -> None:
        self.store.cancel_waiting(now=self.clock.now(), reason="schedule flushed", due=False)

    # Keys written with a TTL (huey's lock_task(ttl=...)) are gone once expired.
    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        if _is_revocation(key):
            self._revocations = True
            self._revocation_writes += 1
            self._unwritten_deletes.pop(key, None)  # a new revocation outlives the old one
        self.store.kv_put(key, value)

    def peek_data(self, key: str) -> bytes | object:
        value = self.store.kv_peek(key, now=self.clock.now())
        return EmptyData if value is None else value

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return self.store.kv_peek_many(keys, now=self.clock.now())

    def pop_data(self, key: str) -> bytes | object:
        value = self.store.kv_pop(key, now=self.clock.now())
        return EmptyData if value is None else value

    def wait_result(self, key: str, timeout: float | None = None, backoff: float = 1.15,
                    max_delay: float = 1.0) -> bool:
        # huey starts polling at 50 ms; a local result is usually there in a few.
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.002
        while True:
            if self.has_data_for_key(key):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(min(delay, max_delay))
            delay *= backoff

    def has_data_for_key(self, key: str) -> bool:
        return self.store.kv_peek(key, now=self.clock.now()) is not None

    def delete_data(self, key: str) -> bool:
        """Delete a key; True when it held a live (unexpired) value."""
        return self.store.kv_delete(key, now=self.clock.now())

    def delete_revocation(self, key: str, written_by: float) -> bool:
        """Delete the revocation ``key`` if it was written no later than ``written_by``
        (the server's time the clear was decided at); True when a live one went.

        Another process may revoke the job again after this one read the revocation
        or decided to clear it: that newer revocation stays, as its writer meant.
        """
        return self.store.kv_delete(key, now=self.clock.now(), written_by=written_by)

    def delete_later(self, key: str, written_by: float) -> None:
        """Clear the revocation ``key`` with a later write: the database did not answer
        the delete now. ``written_by`` as for :meth:`delete_revocation`, so that a
        revoke written while the clear waits is not the one it removes.

        A job's revocation is cleared after its attempt so that its next run is not
        skipped; the attempt's outcome does not wait for it.
        """
        self._unwritten_deletes[key] = written_by

    def write_deletes(self) -> None:
        """Clear the keys :meth:`delete_later` kept; those the database still does not
        answer for stay kept."""
        for key, written_by in self._unwritten_deletes.copy().items():
            try:
                self.delete_revocation(key, written_by)
            except PASSING as exc:
                logger.warning("revocation %s not cleared yet, kept and retried with the next "
                               "claim: %s", key, exc)
                return
            self._unwritten_deletes.pop(key, None)

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        return self.store.kv_put_if_empty(key, value, ttl=ttl, now=self.clock.now())

    def incr(self, key: str, amount: int = 1) -> int:
        return self.store.counter_incr(key, amount)

    def delete_counter(self, key: str) -> None:
        self.store.counter_delete(key)

    def result_store_size(self) -> int:
        return self.store.kv_count()

    def result_items(self) -> dict[str, bytes]:
        return self.store.kv_items()

    def flush_results(self) -> None:
        self.store.kv_flush()

    def flush_counters(self) -> None:
        self.store.counter_flush()


def _is_revocation(key: str) -> bool:
    return key.startswith(("r:", "rt:"))
