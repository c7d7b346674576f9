"""PostgreSQL: retention, and the server's own upkeep (autovacuum, checksums, its disk).

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.upkeep`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from runner.errors import DatabaseCorrupt
from runner.service_sections import RetentionSection
from runner.store.postgres import maintenance as _maintenance
from runner.store.postgres.connection import PgDatabase
from runner.store.rows import PruneReport


class PostgresUpkeep:
    """:class:`runner.store.upkeep.UpkeepStore` on a PostgreSQL database."""

    db: PgDatabase

    def prune_retention(self, section: RetentionSection, *, now: float | None = None,
                        dry_run: bool = False,
                        keep_queues: Collection[str] = ()) -> PruneReport:
        return _maintenance.prune(self.db, section, now=now, dry_run=dry_run,
                                  keep_queues=keep_queues)

    def enable_space_reclaim(self, *, me: str | None = None) -> str | None:
        return None  # autovacuum gives space back

    def space_reclaim_note(self) -> str | None:
        return None

    def vacuum(self, *, force: bool = False) -> str:
        return (f"{self.db.display}: PostgreSQL's autovacuum reclaims space; nothing to do "
                "(VACUUM FULL by hand rewrites a table if ever needed)")

    def data_dir(self) -> Path | None:
        return None  # the data is not on this host

    def probe_write(self, size: int, *, deadline: float, commit: bool = False) -> None:
        # The server's disk is its own to watch; a failed write says DiskFull by itself.
        return None

    def integrity_problem(self, *, full_check_below: int) -> str | None:
        result = self.quick_check()
        return None if result == "ok" else result

    def verify(self) -> None:
        if not self.has_table("runner_job"):
            # A new database is the usual first sight of one: its first worker makes them.
            raise DatabaseCorrupt(f"{self.db.display}: holds no jobs tables; start a worker "
                                  "on it first (it creates them), or point [runner] database "
                                  "/ RUNNER_DATABASE at a jobs database")

    def has_table(self, name: str) -> bool:
        return self.db.query("SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]

    def quick_check(self) -> str:
        # PostgreSQL checks its own pages (checksums, WAL); a read that answers is the check.
        self.db.query("SELECT count(*) FROM runner_meta")
        return "ok"
