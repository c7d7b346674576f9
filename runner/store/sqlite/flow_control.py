"""SQLite: pauses, cancel requests and backpressure counts.

The SQLite side of :mod:`runner.store.flow_control`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.store.rows import PauseRow
from runner.store.sqlite import cancels as _cancels
from runner.store.sqlite import pauses as _pauses
from runner.store.sqlite.counters import read_backpressure
from runner.store.sqlite.db import Database
from runner.store.sqlite.transitions import parking as _parking
from runner.store.states import JobState


class SqliteFlowControl:
    """:class:`runner.store.flow_control.FlowControlStore` on a SQLite file."""

    db: Database

    def set_pause(self, kind: str, name: str, paused: bool, *, now: float,
                  by: str | None = None) -> bool:
        return _pauses.set_pause(self.db, kind, name, paused, now=now, by=by)

    def seed_pauses(self, kind: str, names: Sequence[str], *, now: float) -> None:
        return _pauses.seed_pauses(self.db, kind, names, now=now)

    def list_pauses(self) -> list[PauseRow]:
        return _pauses.list_pauses(self.db)

    def request_cancel(self, job_id: str, *, by: str, now: float) -> JobState | None:
        return _cancels.request_cancel(self.db, job_id, by=by, now=now)

    def cancel_requests(self, job_ids: Sequence[str]) -> dict[str, str]:
        return _cancels.cancel_requests(self.db, job_ids)

    def backpressure_totals(self) -> dict[str, tuple[int, int]]:
        return read_backpressure(self.db)

    def release_parked(self) -> int:
        return self.db.write(_parking.release_all)
