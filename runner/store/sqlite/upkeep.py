"""SQLite: retention, space reclaim, write probes and integrity checks.

The SQLite side of :mod:`runner.store.upkeep`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from runner.service_sections import RetentionSection
from runner.store.rows import PruneReport
from runner.store.sqlite import integrity as _integrity
from runner.store.sqlite import maintenance as _maintenance
from runner.store.sqlite.db import Database


class SqliteUpkeep:
    """:class:`runner.store.upkeep.UpkeepStore` on a SQLite file."""

    db: Database

    def prune_retention(self, section: RetentionSection, *, now: float | None = None,
                        dry_run: bool = False,
                        keep_queues: Collection[str] = ()) -> PruneReport:
        return _maintenance.prune(self.db, section, now=now, dry_run=dry_run,
                                  keep_queues=keep_queues)

    def enable_space_reclaim(self, *, me: str | None = None) -> str | None:
        return _maintenance.enable_space_reclaim(self.db, me=me)

    def space_reclaim_note(self) -> str | None:
        if _maintenance.auto_vacuum_mode(self.db) == _maintenance.INCREMENTAL:
            return None
        return _maintenance.AUTO_VACUUM_OFF

    def vacuum(self, *, force: bool = False) -> str:
        return _maintenance.vacuum_file(self.db, force=force)

    def data_dir(self) -> Path | None:
        return self.db.path.parent

    def probe_write(self, size: int, *, deadline: float, commit: bool = False) -> None:
        _integrity.probe_write(self.db, size, deadline=deadline, commit=commit)

    def integrity_problem(self, *, full_check_below: int) -> str | None:
        return _integrity.integrity_problem(self.db, full_check_below=full_check_below)

    def verify(self) -> None:
        _integrity.verify(self.db)

    # -- integrity -----------------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        return _integrity.has_table(self.db, name)

    def quick_check(self) -> str:
        return _integrity.quick_check(self.db)
