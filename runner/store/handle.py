"""The open handle of a store: where the data is, closing, wake-ups, change detection.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol


class RoomWaiter(Protocol):
    """What a producer blocked at a full queue sleeps on (``on_full = "block"``)."""

    def wait(self, timeout: float) -> bool:
        """Sleep until :meth:`StoreHandle.made_room` is called anywhere (since this waiter
        was made or last woke: none is lost), or ``timeout`` seconds pass (False)."""
        ...

    def close(self) -> None:
        """Stop waiting for room; the notifiers stop sending to this waiter."""
        ...


class StoreHandle(Protocol):
    """Where the data lives, closing and refreshing the handle, wake-ups, change detection."""

    @property
    def path(self) -> Path:
        """The SQLite file; a backend without a file returns a path naming its data
        (``location`` is what messages should show)."""
        ...

    @property
    def location(self) -> str:
        """Where the data lives, for messages: a file path, or a URL without its password."""
        ...

    @property
    def address(self) -> str:
        """Where the data lives as :func:`runner.store.factory.open_store` takes it (a file
        path, or a URL with its credentials and key prefix): to open it again, never to show.
        """
        ...

    @property
    def readonly(self) -> bool:
        """True when this handle may only read (the dashboard's polls)."""
        ...

    def close(self) -> None:
        """Close this thread's connection (others close with their threads) and the
        wake-up sender (both open again on next use)."""
        ...

    # -- wake-ups ------------------------------------------------------------------------

    def wakeup(self) -> None:
        """Tell the waiting workers of every process that jobs were written; never raises.

        SQLite pokes Unix sockets beside the file; a server backend uses its own
        notification (``NOTIFY``, a list push).
        """
        ...

    def listen(self, on_wake: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``on_wake`` (from a thread of the store's) after each :meth:`wakeup`.

        Returns the function that stops listening, or None when wake-ups are
        unavailable (the worker then polls every ``poll_interval``).
        """
        ...

    def offload_checkpoints(self) -> Callable[[], None] | None:
        """Take the file's upkeep that commits do by themselves (SQLite's WAL
        checkpoints) to a thread of the store's while this process claims jobs, so
        that no claim waits on it; returns the function that stops the thread, or
        None when the backend keeps no such upkeep (a server)."""
        ...

    def made_room(self) -> None:
        """Tell producers blocked at a full queue that jobs left the waiting state (a claim
        took them); never raises, and costs next to nothing while no producer waits."""
        ...

    def room_waiter(self) -> RoomWaiter | None:
        """A waiter for :meth:`made_room` from any process (SQLite: a Unix socket beside
        the file; PostgreSQL: ``LISTEN``; Redis: pub/sub), or None when unavailable (the
        producer then polls)."""
        ...

    def refresh(self) -> None:
        """Before a read of a long-lived read-only handle: drop a snapshot left open and
        reconnect when the data moved (a file replaced by a restore).

        Raises:
            DatabaseUnavailable: the data is gone (the file was deleted).
        """
        ...

    def intake_waiting(self) -> bool:
        """Whether jobs wait in SQLite's intake (see
        :mod:`runner.store.sqlite.transitions.intake`), which a read-only handle does not
        see; always False on a server."""
        ...

    def absorb_intake(self) -> None:
        """Move the jobs of SQLite's intake into the jobs table now, unless another
        process holds the write lock (a read-only reader asks a writer to). Nothing to
        do on a server."""
        ...

    def set_queue_weights(self, weights: Mapping[str, int]) -> None:
        """The queues' weights in force (``[queues.NAME] weight``; 1 for a queue not
        named), by which SQLite's intake is moved: queue by queue when its jobs are of
        queues of unequal weights (:func:`runner.flow.unequal_weights`). Nothing to do
        on a server, which keeps no rows in pages the claims write."""
        ...

    # -- change detection ----------------------------------------------------------------

    def data_version(self) -> int:
        """A number that changes when another connection commits (the scheduler's cheap
        poll): SQLite's ``data_version``; a server backend counts its notifications."""
        ...
