"""The outcomes of an attempt in PostgreSQL: completed, retrying, dead, cancelled, handed back."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import errors as pg_errors

from runner.store.job_rows import Ack, FailureInfo, NewJob
from runner.store.postgres.counting import (
    count_completions,
    count_where,
)
from runner.store.postgres.transitions.enqueue import enqueue, notify, rearm
from runner.store.postgres.transitions.values import (
    _AVAILABLE,
    _CANCELLED,
    _COMPLETED,
    _EXECUTING,
    _SCHEDULED,
)
from runner.store.states import (
    JobState,
)


def complete(conn: psycopg.Connection, acks: Sequence[Ack], channel: str | None = None) -> None:
    """``executing`` → ``completed`` for each finished attempt, with its results and next
    steps, counted; one statement for the batch.

    An attempt handed back meanwhile still counts while no later attempt has
    claimed the job; once one has, the late outcome is not written.
    """
    if not acks:
        return
    rows = conn.execute(
        f"UPDATE runner_job j SET state = '{_COMPLETED}', "
        f"started_at = coalesce(a.started, j.started_at), finished_at = a.finished, "
        f"lease_owner = NULL, lease_expires_at = NULL, reason = NULL "
        f"FROM unnest(%s::text[], %s::bigint[], %s::float8[], %s::float8[]) "
        f"AS a(id, attempt, started, finished) "
        f"WHERE j.id = a.id AND j.attempt = a.attempt "
        f"AND j.state IN ('{_EXECUTING}', '{_AVAILABLE}') "
        f"RETURNING j.id, j.task, j.queue, j.started_at, j.finished_at",
        ([a.job_id for a in acks], [a.attempt for a in acks], [a.started_at for a in acks],
         [a.finished_at for a in acks])).fetchall()
    count_completions(conn, [r[1:] for r in rows])
    written = {r[0] for r in rows}
    for a in acks:
        if (a.results or a.jobs) and a.job_id in written:
            write_follow_ups(conn, a.job_id, a.results, a.jobs, a.finished_at, channel)


def write_follow_ups(conn: psycopg.Connection, job_id: str,
                     results: Sequence[tuple[str, bytes]], jobs: Sequence[NewJob],
                     now: float, channel: str | None = None) -> None:
    """Results and next steps of a settled job, inside the transaction that settles it.

    A next step whose id belongs to a finished job makes that job wait again; one
    whose id is still waiting or running is not written, and the settled job's
    reason says so.
    """
    if results:
        put_results(conn, results)
    for job in jobs:
        try:
            with conn.transaction():
                enqueue(conn, [job], now, channel=channel)
        except pg_errors.UniqueViolation as exc:
            if rearm(conn, job, now):
                notify(conn, channel)
            else:
                conn.execute("UPDATE runner_job SET reason = %s WHERE id = %s",
                             (f"next step {job.id} not enqueued: {exc}"[:500], job_id))


def put_results(conn: psycopg.Connection, results: Sequence[tuple[str, bytes]]) -> None:
    """Store result rows (huey's key/value store), replacing what a key held."""
    latest = dict(results)
    conn.execute(
        "INSERT INTO runner_kv (key, value) SELECT * FROM unnest(%s::text[], %s::bytea[]) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = NULL",
        (list(latest), list(latest.values())))


def insert_attempt_error(conn: psycopg.Connection, job_id: str, attempt: int,
                          failure: FailureInfo, worker: str | None, now: float) -> None:
    conn.execute(
        "INSERT INTO runner_job_error (job_id, attempt, kind, error_type, message, traceback, "
        "worker, started_at, failed_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
        (job_id, attempt, failure.kind, failure.error_type, failure.message,
         failure.traceback, worker, failure.started_at, now))


def holds(conn: psycopg.Connection, job_id: str, attempt: int | None) -> bool:
    """Whether ``attempt`` still holds the job, so its outcome may be written (the rule
    of :func:`complete`: running, or handed back and not claimed again since). A worker
    that stalled past its lease reports late; that must not move a job another worker
    runs now. The row stays locked to the end of the transaction. None: any attempt."""
    return conn.execute(
        f"SELECT 1 FROM runner_job WHERE id = %s AND (attempt = %s OR %s::bigint IS NULL) "
        f"AND state IN ('{_EXECUTING}', '{_AVAILABLE}') FOR UPDATE",
        (job_id, attempt, attempt)).fetchone() is not None


def fail(conn: psycopg.Connection, job_id: str, attempt: int, failure: FailureInfo,
         state: JobState, *, worker: str | None, now: float, run_at: float | None,
         reason: str | None, data: bytes | None) -> bool:
    """A failed attempt: ``executing`` → ``retrying`` (at ``run_at``) or ``dead``, while
    ``attempt`` holds the job (see :func:`holds`). Returns whether it was written."""
    if not holds(conn, job_id, attempt):
        return False
    insert_attempt_error(conn, job_id, attempt, failure, worker, now)
    count_where(conn, "retried" if state is JobState.RETRYING else "dead", "id = %s", (job_id,))
    conn.execute(
        "UPDATE runner_job SET failures = failures + 1, "
        "first_failed_at = coalesce(first_failed_at, %s), last_failed_at = %s, "
        "error_type = %s, error_message = %s, last_error = %s, state = %s, reason = %s, "
        "run_at = coalesce(%s, run_at), data = coalesce(%s, data), "
        "started_at = coalesce(%s, started_at), finished_at = %s, lease_owner = NULL, "
        "lease_expires_at = NULL WHERE id = %s",
        (now, now, failure.error_type, failure.message[:2000], failure.traceback, state.value,
         reason, run_at, data, failure.started_at, now, job_id))
    return True


def cancel_attempt(conn: psycopg.Connection, job_id: str, attempt: int | None, *, now: float,
                   reason: str | None, unstarted: bool = False) -> bool:
    """``executing`` → ``cancelled``: revoked or expired when its worker looked (while
    ``attempt`` holds the job). Returns whether it was written; ``unstarted``: the claim
    is undone (see SQLite's)."""
    if not holds(conn, job_id, attempt):
        return False
    count_where(conn, "cancelled", "id = %s", (job_id,))
    if unstarted:
        conn.execute(_CANCEL_UNSTARTED, {"id": job_id, "reason": reason, "now": now})
    else:
        conn.execute(
            f"UPDATE runner_job SET state = '{_CANCELLED}', reason = %s, finished_at = %s, "
            f"lease_owner = NULL, lease_expires_at = NULL WHERE id = %s", (reason, now, job_id))
    return True


#: The last failed attempt of a job (the claim wrote over its run time in the row).
_LAST_FAILED = "FROM runner_job_error WHERE job_id = %(id)s ORDER BY id DESC LIMIT 1"
_CANCEL_UNSTARTED = (
    f"UPDATE runner_job SET state = '{_CANCELLED}', reason = %(reason)s, "
    f"attempt = attempt - 1, started_at = (SELECT started_at {_LAST_FAILED}), "
    f"finished_at = coalesce((SELECT failed_at {_LAST_FAILED}), %(now)s), "
    f"lease_owner = NULL, lease_expires_at = NULL WHERE id = %(id)s")


def hand_back(conn: psycopg.Connection, job_id: str, attempt: int | None, *, now: float,
              reason: str | None) -> bool:
    """``executing`` → ``available`` (interrupted, or shutdown), while ``attempt`` is the
    one running; the attempt is not used (see SQLite's). Returns whether it was written."""
    return conn.execute(
        f"UPDATE runner_job SET state = '{_AVAILABLE}', attempt = attempt - 1, "
        f"reason = %s, run_at = %s, "
        f"lease_owner = NULL, lease_expires_at = NULL WHERE id = %s AND state = '{_EXECUTING}' "
        f"AND (attempt = %s OR %s::bigint IS NULL)",
        (reason, now, job_id, attempt, attempt)).rowcount == 1


def release(conn: psycopg.Connection, job_id: str, run_at: float) -> None:
    """``executing`` → ``scheduled`` unstarted, due at ``run_at``; the attempt is not used."""
    conn.execute(
        f"UPDATE runner_job SET state = '{_SCHEDULED}', attempt = attempt - 1, run_at = %s, "
        f"started_at = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id = %s",
        (run_at, job_id))


def unclaim(conn: psycopg.Connection, job_ids: Sequence[str]) -> None:
    """``executing`` → ``available`` for jobs claimed but never started (a stopping worker)."""
    conn.execute(
        f"UPDATE runner_job SET state = '{_AVAILABLE}', attempt = attempt - 1, "
        f"lease_owner = NULL, lease_expires_at = NULL, started_at = NULL "
        f"WHERE id = ANY(%s) AND state = '{_EXECUTING}'", (list(job_ids),))


def set_progress(conn: psycopg.Connection, job_id: str, done: float, total: float | None,
                 message: str | None) -> None:
    """Record a running job's progress (no change of state)."""
    conn.execute("UPDATE runner_job SET progress_done = %s, progress_total = %s, "
                 "progress_message = %s WHERE id = %s", (done, total, message, job_id))
