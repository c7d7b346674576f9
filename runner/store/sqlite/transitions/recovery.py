"""Recovery: the jobs of a worker that died, handed back or charged a crash."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from runner.store.job_rows import FailureInfo
from runner.store.recovery import Orphan, crash_reason
from runner.store.sqlite.counters import count_where
from runner.store.sqlite.transitions import parking
from runner.store.sqlite.transitions.outcomes import insert_attempt_error


def orphans(conn: sqlite3.Connection, *, expired_before: float,
            dead_owners: Sequence[str]) -> list[Orphan]:
    """Running jobs whose lease expired before ``expired_before`` or whose owner is
    in ``dead_owners``."""
    marks = ",".join("?" * len(dead_owners))
    who = f" OR lease_owner IN ({marks})" if dead_owners else ""
    rows = conn.execute(
        f"SELECT id, lease_owner, attempt, crashes, started_at FROM runner_job "
        f"WHERE state='executing' AND (lease_expires_at < ?{who})",
        (expired_before, *dead_owners)).fetchall()
    return [Orphan(*row) for row in rows]


def lease_owners(conn: sqlite3.Connection) -> list[tuple[str | None, float | None]]:
    """(owner, earliest lease expiry) of every owner with a running job."""
    return conn.execute("SELECT lease_owner, min(lease_expires_at) FROM runner_job "
                        "WHERE state='executing' GROUP BY lease_owner").fetchall()


def running_attempt(conn: sqlite3.Connection, job_id: str, attempt: int,
                    owner: str) -> Orphan | None:
    """The job if that attempt still runs under ``owner`` (to charge it a crash), else None."""
    row = conn.execute(
        "SELECT id, lease_owner, attempt, crashes, started_at FROM runner_job WHERE id=? "
        "AND attempt=? AND state='executing' AND lease_owner=?",
        (job_id, attempt, owner)).fetchone()
    return None if row is None else Orphan(*row)


def requeue_unstarted(conn: sqlite3.Connection, job_id: str, *, now: float,
                      reason: str) -> None:
    """``executing`` → ``available``, the attempt not used: its worker was not running it
    (it died before starting it, or is not running it: ``reason`` says which)."""
    conn.execute(
        "UPDATE runner_job SET state='available', attempt=attempt-1, run_at=?, "
        "started_at=NULL, reason=?, lease_owner=NULL, lease_expires_at=NULL WHERE id=?",
        (now, reason, job_id))
    parking.room_for(conn, [job_id])


def charge_crash(conn: sqlite3.Connection, orphan: Orphan, message: str, *, crash_limit: int,
                 error_type: str, now: float) -> bool:
    """Charge a crash to a running attempt (its worker died).

    ``executing`` → ``available`` (requeued), or ``dead`` once it reached
    ``crash_limit`` crashes; True when dead. The crash is recorded in the
    timeline only: the job's failure count and last error stay those of real failures.
    A crash that kills the job is its last failure (failure lists order by it).
    """
    crashes = orphan.crashes + 1
    insert_attempt_error(conn, orphan.id, orphan.attempt,
                          FailureInfo("crash", error_type, message, "", orphan.started_at),
                          orphan.owner, now)
    if crash_limit and crashes >= crash_limit:
        reason = crash_reason(error_type, crashes, dead=True)
        count_where(conn, "dead", "id = ?", (orphan.id,))
        conn.execute(
            "UPDATE runner_job SET state='dead', crashes=?, finished_at=?, reason=?, "
            "error_type=?, error_message=?, first_failed_at=coalesce(first_failed_at, ?), "
            "last_failed_at=?, lease_owner=NULL, lease_expires_at=NULL WHERE id=?",
            (crashes, now, reason, error_type, message, now, now, orphan.id))
        parking.room_for(conn, [orphan.id])
        return True
    reason = crash_reason(error_type, crashes, dead=False)
    count_where(conn, "retried", "id = ?", (orphan.id,))
    conn.execute(
        "UPDATE runner_job SET state='available', crashes=?, run_at=?, reason=?, "
        "lease_owner=NULL, lease_expires_at=NULL WHERE id=?", (crashes, now, reason, orphan.id))
    parking.room_for(conn, [orphan.id])
    return False
