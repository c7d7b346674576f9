"""Recovery in PostgreSQL: the jobs of a worker that died, handed back or charged a crash."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from runner.store.job_rows import FailureInfo
from runner.store.postgres.counting import (
    count_where,
)
from runner.store.postgres.transitions.outcomes import insert_attempt_error
from runner.store.postgres.transitions.values import (
    _AVAILABLE,
    _DEAD,
    _EXECUTING,
)
from runner.store.recovery import Orphan, crash_reason


def lease_owners(conn: psycopg.Connection) -> list[tuple[str | None, float | None]]:
    """(owner, earliest lease expiry) of every owner with a running job."""
    return conn.execute("SELECT lease_owner, min(lease_expires_at) FROM runner_job "
                        f"WHERE state = '{_EXECUTING}' GROUP BY lease_owner").fetchall()


def orphans(conn: psycopg.Connection, *, expired_before: float,
            dead_owners: Sequence[str]) -> list[Orphan]:
    """Running jobs whose lease expired before ``expired_before`` or whose owner is
    in ``dead_owners``.

    Locked (``FOR UPDATE SKIP LOCKED``) so two recovering workers never charge
    one crash twice.
    """
    rows = conn.execute(
        f"SELECT id, lease_owner, attempt, crashes, started_at FROM runner_job "
        f"WHERE state = '{_EXECUTING}' AND (lease_expires_at < %s OR lease_owner = ANY(%s)) "
        f"FOR UPDATE SKIP LOCKED", (expired_before, list(dead_owners))).fetchall()
    return [Orphan(*row) for row in rows]


def running_attempt(conn: psycopg.Connection, job_id: str, attempt: int,
                    owner: str) -> Orphan | None:
    """The job if that attempt still runs under ``owner`` (to charge it a crash), else None."""
    row = conn.execute(
        f"SELECT id, lease_owner, attempt, crashes, started_at FROM runner_job WHERE id = %s "
        f"AND attempt = %s AND state = '{_EXECUTING}' AND lease_owner = %s FOR UPDATE",
        (job_id, attempt, owner)).fetchone()
    return None if row is None else Orphan(*row)


def requeue_unstarted(conn: psycopg.Connection, job_id: str, *, now: float,
                      reason: str) -> None:
    """``executing`` → ``available``, the attempt not used: its worker was not running it
    (it died before starting it, or is not running it: ``reason`` says which)."""
    conn.execute(
        f"UPDATE runner_job SET state = '{_AVAILABLE}', attempt = attempt - 1, run_at = %s, "
        f"started_at = NULL, reason = %s, lease_owner = NULL, lease_expires_at = NULL "
        f"WHERE id = %s", (now, reason, job_id))


def charge_crash(conn: psycopg.Connection, orphan: Orphan, message: str, *, crash_limit: int,
                 error_type: str, now: float) -> bool:
    """Charge a crash to a running attempt: requeued, or ``dead`` at ``crash_limit`` (True)."""
    crashes = orphan.crashes + 1
    insert_attempt_error(conn, orphan.id, orphan.attempt,
                          FailureInfo("crash", error_type, message, "", orphan.started_at),
                          orphan.owner, now)
    if crash_limit and crashes >= crash_limit:
        reason = crash_reason(error_type, crashes, dead=True)
        count_where(conn, "dead", "id = %s", (orphan.id,))
        conn.execute(
            f"UPDATE runner_job SET state = '{_DEAD}', crashes = %s, finished_at = %s, "
            f"reason = %s, error_type = %s, error_message = %s, "
            f"first_failed_at = coalesce(first_failed_at, %s), last_failed_at = %s, "
            f"lease_owner = NULL, lease_expires_at = NULL WHERE id = %s",
            (crashes, now, reason, error_type, message, now, now, orphan.id))
        return True
    reason = crash_reason(error_type, crashes, dead=False)
    count_where(conn, "retried", "id = %s", (orphan.id,))
    conn.execute(
        f"UPDATE runner_job SET state = '{_AVAILABLE}', crashes = %s, run_at = %s, reason = %s, "
        f"lease_owner = NULL, lease_expires_at = NULL WHERE id = %s",
        (crashes, now, reason, orphan.id))
    return False
