"""Paused queues and tasks: kept in ``runner_pause``, skipped by every claim.

Pausing a queue (or a task) stops workers from claiming its jobs; jobs that
wait stay waiting and jobs that run finish. The state lives in the database,
so it holds for every worker on it and survives restarts. A row records a
resume too (``paused = 0``): ``[queues.NAME] paused = true`` only seeds a
queue nobody has paused or resumed yet.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from runner.store.rows import PauseRow  # noqa: F401 - re-exported
from runner.store.sqlite.db import Database
from runner.store.sqlite.integrity import has_table

#: What can be paused.
KINDS = ("queue", "task")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def set_pause(db: Database, kind: str, name: str, paused: bool, *, now: float,
              by: str | None = None) -> bool:
    """Pause or resume; returns whether the state changed."""
    _check_kind(kind)

    def write(conn: sqlite3.Connection) -> bool:
        row = conn.execute("SELECT paused FROM runner_pause WHERE kind = ? AND name = ?",
                           (kind, name)).fetchone()
        conn.execute(
            "INSERT INTO runner_pause (kind, name, paused, changed_at, changed_by) "
            "VALUES (?,?,?,?,?) ON CONFLICT (kind, name) DO UPDATE SET "
            "paused = excluded.paused, changed_at = excluded.changed_at, "
            "changed_by = excluded.changed_by", (kind, name, int(paused), now, by))
        return row is None or bool(row[0]) != paused

    return db.write(write)


def seed_pauses(db: Database, kind: str, names: Iterable[str], *, now: float,
                by: str = "settings") -> None:
    """Pause the named queues or tasks that have no recorded state yet."""
    _check_kind(kind)
    rows = [(kind, name, now, by) for name in names]
    if rows:
        db.write(lambda conn: conn.executemany(
            "INSERT OR IGNORE INTO runner_pause (kind, name, paused, changed_at, changed_by) "
            "VALUES (?,?,1,?,?)", rows))


def list_pauses(db: Database) -> list[PauseRow]:
    """Every recorded state (paused or resumed), by kind and name.

    Empty on a file no current worker has opened yet (a read-only reader cannot add the table).
    """
    if not has_table(db, "runner_pause"):
        return []
    return [PauseRow(k, n, bool(p), at, by) for k, n, p, at, by in db.query(
        "SELECT kind, name, paused, changed_at, changed_by FROM runner_pause "
        "ORDER BY kind, name")]


#: The condition that leaves out paused queues and tasks, read in the statement itself
#: (where their names are not known yet). ``name`` is never NULL, so ``NOT IN`` holds.
PAUSED_SQL = (" AND queue NOT IN (SELECT name FROM runner_pause WHERE kind = 'queue' "
              "AND paused = 1) AND task NOT IN (SELECT name FROM runner_pause "
              "WHERE kind = 'task' AND paused = 1)")


def paused_sets(conn: sqlite3.Connection) -> tuple[frozenset[str], frozenset[str]]:
    """(paused queues, paused tasks), read inside a claim's transaction."""
    rows = conn.execute("SELECT kind, name FROM runner_pause WHERE paused = 1").fetchall()
    return (frozenset(n for k, n in rows if k == "queue"),
            frozenset(n for k, n in rows if k == "task"))


def claim_filter(queues: Iterable[str], tasks: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """The condition a claim adds to skip these paused queues and tasks (``""`` for none)."""
    queues, tasks = tuple(sorted(queues)), tuple(sorted(tasks))
    sql = ""
    if queues:
        sql += f" AND queue NOT IN ({','.join('?' * len(queues))})"
    if tasks:
        sql += f" AND task NOT IN ({','.join('?' * len(tasks))})"
    return sql, (*queues, *tasks)
