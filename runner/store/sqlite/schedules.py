"""The schedule tables: sync from code, the firing transaction, control and reads.

``runner_schedule`` holds one row per schedule; ``runner_schedule_run`` one row per
fired slot, UNIQUE on (schedule, slot). Firing is one ``BEGIN IMMEDIATE``
transaction per batch: for each schedule a compare-and-set on ``next_fire_at``,
the slot records and the job rows, so any number of schedulers fire a slot once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from runner.store.job_rows import NewJob
from runner.store.schedule_rows import FirePlan, FireResult, RunRow, ScheduleRow, SyncItem  # noqa: F401 - re-exported
from runner.store.schedule_rules import (
    fire_slots,
    fired_values,
    held_by,
    run_outcome,
    slot_reasons,
)
from runner.store.sqlite.conditions import WAITING_WHERE
from runner.store.sqlite.db import Database
from runner.store.sqlite.models import SCHEDULE_ACTIVE
from runner.store.sqlite.transitions import enqueue
from runner.store.states import EXECUTING_SQL, LIVE_SQL

_COLUMNS = ", ".join(f"s.{name}" for name in list(ScheduleRow.__dataclass_fields__)[:-1])


def sync_schedules(db: Database, items: Sequence[SyncItem], *, now: float,
                   orphan_others: bool = True) -> None:
    """Upsert definitions; rows missing from ``items`` are marked orphaned (never deleted).

    ``next_fire_at`` of an existing row changes only when its expression, zone or
    enabled state changed, or it was orphaned, so a restart never fires a slot again.
    """

    def write(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO runner_schedule (name, task, expression, tz, misfire, overlap, "
            "enabled, next_fire_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (name) DO UPDATE SET next_fire_at = CASE WHEN "
            "expression != excluded.expression OR tz != excluded.tz OR orphaned = 1 "
            "OR (enabled = 0 AND excluded.enabled = 1) THEN excluded.next_fire_at "
            "ELSE next_fire_at END, task = excluded.task, expression = excluded.expression, "
            "tz = excluded.tz, misfire = excluded.misfire, overlap = excluded.overlap, "
            "enabled = excluded.enabled, orphaned = 0, updated_at = excluded.updated_at",
            [(i.name, i.task, i.expression, i.tz, i.misfire, i.overlap, int(i.enabled),
              i.next_fire_at, now, now) for i in items])
        if orphan_others:
            names = [i.name for i in items]
            conn.execute(
                f"UPDATE runner_schedule SET orphaned = 1, updated_at = ? WHERE orphaned = 0 "
                f"AND name NOT IN ({','.join('?' * len(names))})", (now, *names))

    db.write(write)


def adopt_schedules(db: Database, names: Sequence[str], *, now: float) -> list[str]:
    """Clear the orphaned mark of those of ``names`` that carry it, ``next_fire_at`` kept:
    another process's sync marked them, but this one still defines and fires them, and
    the slots missed meanwhile go by the misfire policy. A read first, so that the usual
    pass, with nothing to adopt, takes no write lock."""
    wanted = set(names)
    orphaned = [name for (name,) in db.query(
        "SELECT name FROM runner_schedule WHERE orphaned = 1") if name in wanted]
    if not orphaned:
        return []

    def write(conn: sqlite3.Connection) -> list[str]:
        return [name for (name,) in conn.execute(
            f"UPDATE runner_schedule SET orphaned = 0, updated_at = ? WHERE orphaned = 1 "
            f"AND name IN ({','.join('?' * len(orphaned))}) RETURNING name", (now, *orphaned))]

    return sorted(db.write(write))


def ensure_schedule(db: Database, item: SyncItem, *, now: float) -> None:
    """Insert a schedule's row if there is none yet (control before the first sync)."""
    db.write(lambda conn: conn.execute(
        "INSERT OR IGNORE INTO runner_schedule (name, task, expression, tz, misfire, overlap, "
        "enabled, next_fire_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (item.name, item.task, item.expression, item.tz, item.misfire, item.overlap,
         int(item.enabled), item.next_fire_at, now, now)))


def due_schedules(db: Database, now: float) -> list[tuple[str, float]]:
    """``(name, next_fire_at)`` of active schedules due at ``now``."""
    return [(r[0], r[1]) for r in db.query(
        f"SELECT name, next_fire_at FROM runner_schedule INDEXED BY runner_schedule_due "
        f"WHERE {SCHEDULE_ACTIVE} AND next_fire_at <= ? ORDER BY next_fire_at", (now,))]


def next_due(db: Database) -> float | None:
    """The earliest ``next_fire_at`` of an active schedule."""
    rows = db.query(f"SELECT min(next_fire_at) FROM runner_schedule INDEXED BY "
                    f"runner_schedule_due WHERE {SCHEDULE_ACTIVE}")
    return rows[0][0] if rows else None


def data_version(db: Database) -> int:
    """SQLite's ``data_version``: changes when another connection commits (cheap poll)."""
    return db.query("PRAGMA data_version")[0][0]


def fire(db: Database, plans: Sequence[FirePlan], *, clock: Callable[[], float],
         queue_size: int) -> list[FireResult]:
    """Fire due schedules in one transaction (see module docstring); returns the outcomes."""

    def write(conn: sqlite3.Connection) -> list[FireResult]:
        return [_fire_one(conn, plan, clock(), queue_size) for plan in plans]

    return db.write(write) if plans else []


def _fire_one(conn: sqlite3.Connection, plan: FirePlan, fired_at: float,
              queue_size: int) -> FireResult:
    row = conn.execute(
        f"UPDATE runner_schedule SET next_fire_at = ?, updated_at = ? WHERE name = ? AND "
        f"next_fire_at = ? AND {SCHEDULE_ACTIVE} RETURNING skip_next",
        (plan.next_fire_at, fired_at, plan.name, plan.expected)).fetchone()
    result = FireResult(plan.name, row is not None, fired_at)
    if row is None:
        return result  # another scheduler fired it, or it was paused meanwhile
    waiting, running = conn.execute(
        f"SELECT coalesce(sum({WAITING_WHERE}), 0), "
        f"coalesce(sum(state = {EXECUTING_SQL}), 0) "
        f"FROM runner_job WHERE schedule = ? AND state IN {LIVE_SQL}", (plan.name,)).fetchone()
    last_job = fire_slots(
        plan, result, slot_reasons(plan, bool(row[0]), waiting, running),
        record=lambda slot, job, reason: bool(conn.execute(
            "INSERT OR IGNORE INTO runner_schedule_run (schedule, slot, manual, fired_at, "
            "job_id, outcome) VALUES (?, ?, 0, ?, ?, ?)",
            (plan.name, slot, fired_at, None if reason else job.id,
             run_outcome(reason))).rowcount),
        enqueue=lambda job: held_by(enqueue(conn, [job], created=fired_at,
                                            queue_size=queue_size).duplicates.get(job.id)),
        skip=lambda slot, reason: conn.execute(
            "UPDATE runner_schedule_run SET job_id = NULL, outcome = ? WHERE "
            "schedule = ? AND slot = ? AND manual = 0", (run_outcome(reason), plan.name, slot)))
    conn.execute(
        "UPDATE runner_schedule SET skip_next = ?, last_slot_at = coalesce(?, last_slot_at), "
        "last_fired_at = CASE WHEN ? IS NULL THEN last_fired_at ELSE ? END, "
        "last_lag = coalesce(?, last_lag), last_job_id = coalesce(?, last_job_id), "
        "fired = fired + ?, skipped = skipped + ?, "
        "last_skip_at = CASE WHEN ? IS NULL THEN last_skip_at ELSE ? END, "
        "last_skip_reason = coalesce(?, last_skip_reason) WHERE name = ?",
        fired_values(plan, result, bool(row[0]), last_job))
    return result


def record_manual_run(db: Database, name: str, job: NewJob, *, now: float,
                      queue_size: int) -> str | None:
    """Insert an extra run's job and slot record; the schedule's next fire is untouched.
    Returns the live job that holds the run's unique key (nothing written), or None."""

    def write(conn: sqlite3.Connection) -> str | None:
        holder = enqueue(conn, [job], created=now, queue_size=queue_size).duplicates.get(job.id)
        if holder is not None:
            return holder
        conn.execute("INSERT INTO runner_schedule_run (schedule, slot, manual, fired_at, job_id, "
                     "outcome) VALUES (?, ?, 1, ?, ?, 'enqueued (run now)')",
                     (name, now, now, job.id))
        conn.execute("UPDATE runner_schedule SET last_job_id = ?, last_fired_at = ?, "
                     "fired = fired + 1, updated_at = ? WHERE name = ?", (job.id, now, now, name))
        return None

    return db.write(write)


def set_paused(db: Database, name: str, paused: bool, *, now: float,
               next_fire_at: float | None = None) -> bool:
    """Pause or resume; resuming sets ``next_fire_at`` (no catch-up for paused time).

    Returns:
        False when there is no such schedule.
    """
    if paused:
        sql, params = ("UPDATE runner_schedule SET paused = 1, updated_at = ? WHERE name = ?",
                       (now, name))
    else:
        sql = ("UPDATE runner_schedule SET next_fire_at = CASE WHEN paused = 1 THEN ? ELSE "
               "next_fire_at END, paused = 0, updated_at = ? WHERE name = ?")
        params = (next_fire_at, now, name)
    return db.write(lambda conn: conn.execute(sql, params).rowcount) == 1


def set_skip_next(db: Database, name: str, skip: bool = True, *, now: float) -> bool:
    """Ask to skip (or no longer skip) the next slot; False when there is no such schedule."""
    return db.write(lambda conn: conn.execute(
        "UPDATE runner_schedule SET skip_next = ?, updated_at = ? WHERE name = ?",
        (int(skip), now, name)).rowcount) == 1


def list_schedules(db: Database, name: str | None = None) -> list[ScheduleRow]:
    """Every schedule (or the one named), by name, with its last job's state."""
    where, params = (" WHERE s.name = ?", (name,)) if name is not None else ("", ())
    rows = db.query(f"SELECT {_COLUMNS}, j.state FROM runner_schedule s LEFT JOIN runner_job j "
                    f"ON j.id = s.last_job_id{where} ORDER BY s.name", params)
    return [ScheduleRow(*r[:11], *(bool(v) for v in r[11:15]), *r[15:]) for r in rows]


def get_schedule(db: Database, name: str) -> ScheduleRow | None:
    """One schedule, or None."""
    rows = list_schedules(db, name)
    return rows[0] if rows else None


def schedule_runs(db: Database, name: str, *, limit: int = 100) -> list[RunRow]:
    """The most recent fired slots of a schedule, oldest first."""
    rows = db.query("SELECT schedule, slot, manual, fired_at, job_id, outcome FROM "
                    "runner_schedule_run WHERE schedule = ? ORDER BY fired_at DESC, slot DESC "
                    "LIMIT ?", (name, limit))
    return [RunRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in reversed(rows)]


def prune_runs(db: Database, *, before: float) -> int:
    """Delete slot records fired before ``before``; returns how many."""
    return db.write(lambda conn: conn.execute(
        "DELETE FROM runner_schedule_run WHERE fired_at < ?", (before,)).rowcount)


def count_schedules(db: Database) -> int:
    """How many schedules the database holds."""
    return db.query("SELECT count(*) FROM runner_schedule")[0][0]
