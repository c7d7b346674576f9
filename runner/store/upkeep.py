"""Upkeep in the storage seam: retention, space reclaim, free space, integrity.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Protocol

from runner.service_sections import RetentionSection
from runner.store.rows import PruneReport


class UpkeepStore(Protocol):
    """Pruning, vacuum, write probes and checks that the data is sound."""

    def prune_retention(self, section: RetentionSection, *, now: float | None = None,
                        dry_run: bool = False,
                        keep_queues: Collection[str] = ()) -> PruneReport:
        """Delete what retention says is old; with ``dry_run`` only count it.

        The bookkeeping of idle queues goes too: the waiting count and the share turn
        of every queue with no job waiting, scheduled or running, except those of
        ``keep_queues`` (the queues the settings name). A job enqueued meanwhile is
        counted all the same; a forgotten queue used again starts as a new one.
        """
        ...

    def enable_space_reclaim(self, *, me: str | None = None) -> str | None:
        """At a worker's start: make pruned rows give their space back when that is safe;
        returns what was done or why not, for the log (None: nothing to say)."""
        ...

    def space_reclaim_note(self) -> str | None:
        """Why pruned rows do not give space back and what to run about it, or None."""
        ...

    def vacuum(self, *, force: bool = False) -> str:
        """Rewrite the data so pruned rows give their space back; returns what was done.

        Raises:
            DatabaseLocked: workers are running and ``force`` is False.
        """
        ...

    def data_dir(self) -> Path | None:
        """The local directory whose free space the data needs (None: not on this host)."""
        ...

    def probe_write(self, size: int, *, deadline: float, commit: bool = False) -> None:
        """Allocate about ``size`` bytes: rolled back, or with ``commit`` written and deleted.

        Raises:
            DiskFull: there was no room.
            DatabaseLocked: no write could be had within ``deadline`` seconds.
        """
        ...

    def integrity_problem(self, *, full_check_below: int) -> str | None:
        """None when the data reads as a sound jobs database, else the problem.

        The full check (O(size)) runs only on data smaller than ``full_check_below`` bytes.

        Raises:
            DatabaseUnavailable: the server cannot be reached, or what answers is not
                the backend's server: nothing was checked.
        """
        ...

    def verify(self) -> None:
        """Make sure this opens as a jobs database.

        Raises:
            DatabaseUnavailable: it cannot be opened.
            DatabaseCorrupt: it is not a jobs database.
            DatabaseLocked: it stayed locked.
        """
        ...

    # -- integrity -----------------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        """True when the database holds table ``name`` (newer features add tables)."""
        ...

    def quick_check(self) -> str:
        """SQLite's ``quick_check(1)``: ``"ok"`` or the first problem found (O(file size))."""
        ...
