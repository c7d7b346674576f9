"""PostgreSQL: pauses, cancel requests and backpressure totals.

The PostgreSQL side of :mod:`runner.store.flow_control`, a mixin of
:class:`runner.store.postgres.PostgresStore` (its ``db`` is the
:class:`~runner.store.postgres.connection.PgDatabase`).
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.store.postgres import control as _control
from runner.store.postgres import transitions as _transitions
from runner.store.postgres.connection import PgDatabase
from runner.store.rows import PauseRow
from runner.store.states import JobState


class PostgresFlowControl:
    """:class:`runner.store.flow_control.FlowControlStore` on a PostgreSQL database."""

    db: PgDatabase

    def set_pause(self, kind: str, name: str, paused: bool, *, now: float,
                  by: str | None = None) -> bool:
        channel = self.db.channel

        def write(conn) -> bool:  # noqa: ANN001 - a psycopg connection
            changed = _control.set_pause(conn, kind, name, paused, now=now, by=by)
            if changed and not paused:
                _transitions.notify(conn, channel)  # idle workers take the resumed jobs
            return changed

        return self.db.write(write)

    def seed_pauses(self, kind: str, names: Sequence[str], *, now: float) -> None:
        if names:
            self.db.write(lambda conn: _control.seed_pauses(conn, kind, names, now=now))

    def list_pauses(self) -> list[PauseRow]:
        return _control.list_pauses(self.db)

    def request_cancel(self, job_id: str, *, by: str, now: float) -> JobState | None:
        return self.db.write(lambda conn: _control.request_cancel(conn, job_id, by=by,
                                                                  now=now))

    def cancel_requests(self, job_ids: Sequence[str]) -> dict[str, str]:
        return _control.cancel_requests(self.db, job_ids)

    def backpressure_totals(self) -> dict[str, tuple[int, int]]:
        return _control.backpressure_totals(self.db)
