"""PostgreSQL: schedules: sync from code, the firing transaction, control and reads.

Firing is a compare-and-set on ``next_fire_at`` under ``READ COMMITTED``: a
second scheduler's ``UPDATE`` waits for the first one's row lock, then finds
``next_fire_at`` moved and changes nothing, so a slot fires once however many
hosts race for it; ``runner_schedule_run``'s UNIQUE (schedule, slot, manual)
is the second guard.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.schedule_store`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg

from runner.store.job_rows import NewJob
from runner.store.postgres import maintenance as _maintenance
from runner.store.postgres import transitions
from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.lookup import SCHEDULE_ACTIVE
from runner.store.schedule_rows import FirePlan, FireResult, RunRow, ScheduleRow, SyncItem
from runner.store.schedule_rules import (
    fire_slots,
    fired_values,
    held_by,
    run_outcome,
    slot_reasons,
)
from runner.store.states import EXECUTING_SQL, LIVE_SQL, WAITING_SQL

_COLUMNS = ", ".join(f"s.{name}" for name in list(ScheduleRow.__dataclass_fields__)[:-1])

_INSERT = ("INSERT INTO runner_schedule AS s (name, task, expression, tz, misfire, overlap, "
           "enabled, next_fire_at, created_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)")


def data_version(db: PgDatabase) -> int:
    """A number that changes when schedules change (the scheduler's cheap poll).

    PostgreSQL has no per-file change counter: this is a digest of the
    schedules' update times and next fire times, one small table read.
    """
    return db.query("SELECT coalesce(hashtextextended(string_agg(name || ':' || "
                    "updated_at::text || ':' || coalesce(next_fire_at::text, '') || ':' || "
                    "paused::text, ',' ORDER BY name), 0), 0) FROM runner_schedule")[0][0]


def fire(db: PgDatabase, plans: Sequence[FirePlan], *, clock: Callable[[], float],
         queue_size: int) -> list[FireResult]:
    """Fire due schedules in one transaction; returns the outcomes."""
    channel = db.channel

    def write(conn: psycopg.Connection) -> list[FireResult]:
        return [_fire_one(conn, plan, clock(), queue_size, channel) for plan in plans]

    return db.write(write) if plans else []


def _fire_one(conn: psycopg.Connection, plan: FirePlan, fired_at: float, queue_size: int,
              channel: str) -> FireResult:
    row = conn.execute(
        f"UPDATE runner_schedule SET next_fire_at = %s, updated_at = %s WHERE name = %s AND "
        f"next_fire_at = %s AND {SCHEDULE_ACTIVE} RETURNING skip_next",
        (plan.next_fire_at, fired_at, plan.name, plan.expected)).fetchone()
    result = FireResult(plan.name, row is not None, fired_at)
    if row is None:
        return result  # another scheduler fired it, or it was paused meanwhile
    waiting, running = conn.execute(
        f"SELECT count(*) FILTER (WHERE state IN {WAITING_SQL}), "
        f"count(*) FILTER (WHERE state = {EXECUTING_SQL}) "
        f"FROM runner_job WHERE schedule = %s AND state IN {LIVE_SQL}", (plan.name,)).fetchone()

    def enqueue(job: NewJob) -> str | None:
        sizes = {job.queue: queue_size} if queue_size else {}
        with conn.transaction():
            return held_by(transitions.enqueue_new(conn, [job], fired_at, sizes=sizes,
                                                   channel=channel).duplicates.get(job.id))

    last_job = fire_slots(
        plan, result, slot_reasons(plan, bool(row[0]), waiting, running),
        record=lambda slot, job, reason: bool(conn.execute(
            "INSERT INTO runner_schedule_run (schedule, slot, manual, fired_at, job_id, "
            "outcome) VALUES (%s, %s, 0, %s, %s, %s) ON CONFLICT DO NOTHING",
            (plan.name, slot, fired_at, None if reason else job.id,
             run_outcome(reason))).rowcount),
        enqueue=enqueue,
        skip=lambda slot, reason: conn.execute(
            "UPDATE runner_schedule_run SET job_id = NULL, outcome = %s WHERE "
            "schedule = %s AND slot = %s AND manual = 0", (run_outcome(reason), plan.name, slot)))
    conn.execute(
        "UPDATE runner_schedule SET skip_next = %s, "
        "last_slot_at = coalesce(%s, last_slot_at), "
        "last_fired_at = CASE WHEN %s::float8 IS NULL THEN last_fired_at ELSE %s END, "
        "last_lag = coalesce(%s, last_lag), last_job_id = coalesce(%s, last_job_id), "
        "fired = fired + %s, skipped = skipped + %s, "
        "last_skip_at = CASE WHEN %s::text IS NULL THEN last_skip_at ELSE %s END, "
        "last_skip_reason = coalesce(%s, last_skip_reason) WHERE name = %s",
        fired_values(plan, result, bool(row[0]), last_job))
    return result


class PostgresSchedules:
    """:class:`runner.store.schedule_store.SchedulesStore` on a PostgreSQL database."""

    db: PgDatabase

    def sync_schedules(self, items: Sequence[SyncItem], *, now: float,
                       orphan_others: bool = True) -> None:
        """Upsert definitions; rows missing from ``items`` are marked orphaned (never deleted)."""
        db = self.db

        def write(conn: psycopg.Connection) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    _INSERT + " ON CONFLICT (name) DO UPDATE SET next_fire_at = CASE WHEN "
                    "s.expression != excluded.expression OR s.tz != excluded.tz "
                    "OR s.orphaned = 1 OR (s.enabled = 0 AND excluded.enabled = 1) "
                    "THEN excluded.next_fire_at ELSE s.next_fire_at END, task = excluded.task, "
                    "expression = excluded.expression, tz = excluded.tz, "
                    "misfire = excluded.misfire, overlap = excluded.overlap, "
                    "enabled = excluded.enabled, orphaned = 0, updated_at = excluded.updated_at",
                    [(i.name, i.task, i.expression, i.tz, i.misfire, i.overlap, int(i.enabled),
                      i.next_fire_at, now, now) for i in sorted(items, key=lambda i: i.name)])
            if orphan_others:
                conn.execute("UPDATE runner_schedule SET orphaned = 1, updated_at = %s "
                             "WHERE orphaned = 0 AND NOT (name = ANY(%s))",
                             (now, [i.name for i in items]))

        db.write(write)

    def adopt_schedules(self, names: Sequence[str], *, now: float) -> list[str]:
        """Clear the orphaned mark of those of ``names`` that carry it, ``next_fire_at``
        kept (see the SQLite store); a read first, so a pass with nothing to adopt
        writes nothing."""
        wanted = set(names)
        orphaned = [name for (name,) in self.db.query(
            "SELECT name FROM runner_schedule WHERE orphaned = 1") if name in wanted]
        if not orphaned:
            return []

        def write(conn: psycopg.Connection) -> list[str]:
            return [name for (name,) in conn.execute(
                "UPDATE runner_schedule SET orphaned = 0, updated_at = %s WHERE orphaned = 1 "
                "AND name = ANY(%s) RETURNING name", (now, orphaned)).fetchall()]

        return sorted(self.db.write(write))

    def ensure_schedule(self, item: SyncItem, *, now: float) -> None:
        """Insert a schedule's row if there is none yet."""
        db = self.db
        db.write(lambda conn: conn.execute(
            _INSERT + " ON CONFLICT (name) DO NOTHING",
            (item.name, item.task, item.expression, item.tz, item.misfire, item.overlap,
             int(item.enabled), item.next_fire_at, now, now)))

    def due_schedules(self, now: float) -> list[tuple[str, float]]:
        """``(name, next_fire_at)`` of active schedules due at ``now``."""
        db = self.db
        return [(r[0], r[1]) for r in db.query(
            f"SELECT name, next_fire_at FROM runner_schedule WHERE {SCHEDULE_ACTIVE} "
            f"AND next_fire_at <= %s ORDER BY next_fire_at", (now,))]

    def next_due(self) -> float | None:
        """The earliest ``next_fire_at`` of an active schedule."""
        return self.db.query(
            f"SELECT min(next_fire_at) FROM runner_schedule WHERE {SCHEDULE_ACTIVE}")[0][0]

    def fire(self, plans: Sequence[FirePlan], *, clock: Callable[[], float],
             queue_size: int) -> list[FireResult]:
        return fire(self.db, plans, clock=clock, queue_size=queue_size)

    def record_manual_run(self, name: str, job: NewJob, *, now: float,
                          queue_size: int) -> str | None:
        """Insert an extra run's job and slot record; the schedule's next fire is untouched.
        Returns the live job that holds the run's unique key (nothing written), or None."""
        db = self.db
        channel = db.channel
        sizes = {job.queue: queue_size} if queue_size else {}

        def write(conn: psycopg.Connection) -> str | None:
            holder = transitions.enqueue_new(conn, [job], now, sizes=sizes,
                                             channel=channel).duplicates.get(job.id)
            if holder is not None:
                return holder
            conn.execute("INSERT INTO runner_schedule_run (schedule, slot, manual, fired_at, "
                         "job_id, outcome) VALUES (%s, %s, 1, %s, %s, 'enqueued (run now)')",
                         (name, now, now, job.id))
            conn.execute("UPDATE runner_schedule SET last_job_id = %s, last_fired_at = %s, "
                         "fired = fired + 1, updated_at = %s WHERE name = %s",
                         (job.id, now, now, name))
            return None

        return db.write(write)

    def set_paused(self, name: str, paused: bool, *, now: float,
                   next_fire_at: float | None = None) -> bool:
        """Pause or resume; resuming sets ``next_fire_at``. False when there is no such schedule."""
        db = self.db
        if paused:
            sql, params = ("UPDATE runner_schedule SET paused = 1, updated_at = %s WHERE name = %s",
                           (now, name))
        else:
            sql = ("UPDATE runner_schedule SET next_fire_at = CASE WHEN paused = 1 THEN %s ELSE "
                   "next_fire_at END, paused = 0, updated_at = %s WHERE name = %s")
            params = (next_fire_at, now, name)
        return db.write(lambda conn: conn.execute(sql, params).rowcount) == 1

    def set_skip_next(self, name: str, skip: bool = True, *, now: float) -> bool:
        """Ask to skip (or no longer skip) the next slot; False when there is no such schedule."""
        db = self.db
        return db.write(lambda conn: conn.execute(
            "UPDATE runner_schedule SET skip_next = %s, updated_at = %s WHERE name = %s",
            (int(skip), now, name)).rowcount) == 1

    def list_schedules(self, name: str | None = None) -> list[ScheduleRow]:
        """Every schedule (or the one named), by name, with its last job's state."""
        db = self.db
        where, params = (" WHERE s.name = %s", (name,)) if name is not None else ("", ())
        rows = db.query(f"SELECT {_COLUMNS}, j.state FROM runner_schedule s LEFT JOIN runner_job j "
                        f"ON j.id = s.last_job_id{where} ORDER BY s.name", params)
        return [ScheduleRow(*r[:11], *(bool(v) for v in r[11:15]), *r[15:]) for r in rows]

    def get_schedule(self, name: str) -> ScheduleRow | None:
        rows = self.list_schedules(name)
        return rows[0] if rows else None

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[RunRow]:
        """The most recent fired slots of a schedule, oldest first."""
        db = self.db
        rows = db.query("SELECT schedule, slot, manual, fired_at, job_id, outcome FROM "
                        "runner_schedule_run WHERE schedule = %s ORDER BY fired_at DESC, slot DESC "
                        "LIMIT %s", (name, limit))
        return [RunRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in reversed(rows)]

    def prune_runs(self, *, before: float) -> int:
        return _maintenance.prune_runs(self.db, before=before)

    def count_schedules(self) -> int:
        return self.db.query("SELECT count(*) FROM runner_schedule")[0][0]
