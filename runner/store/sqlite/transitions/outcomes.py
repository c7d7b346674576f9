"""The outcomes of an attempt: completed, retrying, dead, cancelled, or handed back."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from runner.store.job_rows import Ack, FailureInfo, NewJob
from runner.store.sqlite.counters import (
    count_completions,
    count_where,
)
from runner.store.sqlite.transitions import parking
from runner.store.sqlite.transitions.enqueue import enqueue, rearm
from runner.store.states import JobState

#: The states in which an attempt still holds its job: running, or handed back (an expired
#: lease) and not claimed again since; every outcome of the attempt is written only then.
_HELD = "state IN ('executing','available')"

_ACK_SQL = (
    "UPDATE runner_job SET state='completed', started_at=coalesce(?, started_at), "
    "finished_at=?, lease_owner=NULL, lease_expires_at=NULL, reason=NULL "
    f"WHERE id=? AND attempt=? AND {_HELD}")


def complete(conn: sqlite3.Connection, acks: Sequence[Ack],
             labels: Mapping[str, tuple[str, str]] | None = None) -> None:
    """``executing`` → ``completed`` for each finished attempt, with its results and next
    steps, and count them.

    An attempt handed back meanwhile (shutdown, an expired lease) still counts
    while no later attempt has claimed the job; once one has, the late outcome
    is not written and the job's next attempt writes its own. ``labels`` (task
    and queue by job id, from the claim) spare the counting a read.
    """
    plain = [a for a in acks if not a.results and not a.jobs]
    changed = conn.executemany(_ACK_SQL, [(a.started_at, a.finished_at, a.job_id, a.attempt)
                                          for a in plain]).rowcount
    written: list[Ack] | None = plain if changed == len(plain) else None
    for a in acks:
        if (a.results or a.jobs) and conn.execute(
                _ACK_SQL, (a.started_at, a.finished_at, a.job_id, a.attempt)).rowcount:
            write_follow_ups(conn, a.job_id, a.results, a.jobs, a.finished_at)
            if written is not None:
                written.append(a)
    if written is None:  # some row of the batch was not written: find out which from the rows
        count_completions(conn, acks)
    else:
        count_completions(conn, written, labels)
    parking.room_for(conn, [a.job_id for a in acks])


def write_follow_ups(conn: sqlite3.Connection, job_id: str,
                     results: Sequence[tuple[str, bytes]], jobs: Sequence[NewJob],
                     now: float) -> None:
    """Results and next steps of a settled job, inside the transaction that settles it.

    A next step whose id belongs to a finished job (a pipeline enqueued again)
    makes that job wait again, as an enqueue would; one whose id is still
    waiting or running is not written, and the settled job's reason says so
    rather than its whole outcome failing for ever.
    """
    if results:
        conn.executemany("INSERT OR REPLACE INTO runner_kv (key, value) VALUES (?, ?)", results)
    for job in jobs:
        conn.execute("SAVEPOINT follow_up")
        try:
            enqueue(conn, [job], now)
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK TO follow_up")
            if not rearm(conn, job, now):
                conn.execute("UPDATE runner_job SET reason=? WHERE id=?",
                             (f"next step {job.id} not enqueued: {exc}"[:500], job_id))
        conn.execute("RELEASE follow_up")


def record_failure(conn: sqlite3.Connection, job_id: str, attempt: int,
                   failure: FailureInfo, worker: str | None, now: float) -> None:
    """Add a failed attempt to the job's timeline and its last-error columns."""
    insert_attempt_error(conn, job_id, attempt, failure, worker, now)
    conn.execute(
        "UPDATE runner_job SET failures=failures+1, first_failed_at=coalesce(first_failed_at, ?),"
        " last_failed_at=?, error_type=?, error_message=?, last_error=? WHERE id=?",
        (now, now, failure.error_type, failure.message[:2000], failure.traceback, job_id))


def insert_attempt_error(conn: sqlite3.Connection, job_id: str, attempt: int,
                          failure: FailureInfo, worker: str | None, now: float) -> None:
    conn.execute(
        "INSERT INTO runner_job_error (job_id, attempt, kind, error_type, message, traceback, "
        "worker, started_at, failed_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (job_id, attempt, failure.kind, failure.error_type, failure.message,
         failure.traceback, worker, failure.started_at, now))


def retry(conn: sqlite3.Connection, job_id: str, attempt: int, failure: FailureInfo, *,
          worker: str | None, now: float, run_at: float | None, reason: str | None,
          data: bytes | None = None, results: Sequence[tuple[str, bytes]] = (),
          jobs: Sequence[NewJob] = ()) -> None:
    """``executing`` → ``retrying``: the attempt failed; the next one is due at ``run_at``.

    ``data`` is the task as serialized for its next attempt (huey counts retries in it).
    Nothing is written once a later attempt has the job (see :func:`holds`).
    """
    if not holds(conn, job_id, attempt):
        return
    _fail(conn, job_id, attempt, failure, JobState.RETRYING, worker=worker, now=now,
          run_at=run_at, reason=reason, data=data)
    write_follow_ups(conn, job_id, results, jobs, now)


def bury(conn: sqlite3.Connection, job_id: str, attempt: int, failure: FailureInfo, *,
         worker: str | None, now: float, reason: str | None,
         results: Sequence[tuple[str, bytes]] = (), jobs: Sequence[NewJob] = ()) -> None:
    """``executing`` → ``dead``: failed for good (retries used up, Fatal, unreadable, unknown).

    ``results`` (the error huey stores for each pipeline step) and ``jobs`` (an
    error handler) are written in the same step; nothing once a later attempt has the job.
    """
    if not holds(conn, job_id, attempt):
        return
    _fail(conn, job_id, attempt, failure, JobState.DEAD, worker=worker, now=now, run_at=None,
          reason=reason, data=None)
    write_follow_ups(conn, job_id, results, jobs, now)


def holds(conn: sqlite3.Connection, job_id: str, attempt: int | None) -> bool:
    """Whether ``attempt`` still holds the job, so its outcome may be written.

    It does while it runs, and after its lease expired until a later attempt claims
    the job (the rule of :data:`_ACK_SQL`): a worker that stalled past its lease
    (a call blocked in C, a paused process) reports late, and that report must not
    move a job another worker is running now. None: whichever attempt runs.
    """
    return conn.execute(
        f"SELECT 1 FROM runner_job WHERE id=? AND (attempt=? OR ? IS NULL) AND {_HELD}",
        (job_id, attempt, attempt)).fetchone() is not None


def _fail(conn: sqlite3.Connection, job_id: str, attempt: int, failure: FailureInfo,
          state: JobState, *, worker: str | None, now: float, run_at: float | None,
          reason: str | None, data: bytes | None) -> None:
    record_failure(conn, job_id, attempt, failure, worker, now)
    count_where(conn, "retried" if state is JobState.RETRYING else "dead", "id = ?", (job_id,))
    conn.execute(
        "UPDATE runner_job SET state=?, reason=?, run_at=coalesce(?, run_at), "
        "data=coalesce(?, data), started_at=coalesce(?, started_at), finished_at=?, "
        "lease_owner=NULL, lease_expires_at=NULL WHERE id=?",
        (state.value, reason, run_at, data, failure.started_at, now, job_id))
    parking.room_for(conn, [job_id])


def cancel_attempt(conn: sqlite3.Connection, job_id: str, attempt: int | None, *, now: float,
                   reason: str | None, unstarted: bool = False) -> bool:
    """``executing`` → ``cancelled``: revoked or expired when its worker looked (while
    ``attempt`` holds the job: see :func:`holds`). Returns whether it was written.

    ``unstarted``: the claim is undone (see :meth:`runner.store.job_machine.JobMachine.
    cancel_attempt`): the attempt not counted, the run time the last finished attempt's."""
    if not holds(conn, job_id, attempt):
        return False
    count_where(conn, "cancelled", "id = ?", (job_id,))
    if unstarted:
        conn.execute(_CANCEL_UNSTARTED, {"id": job_id, "reason": reason, "now": now})
    else:
        conn.execute(
            "UPDATE runner_job SET state='cancelled', reason=?, finished_at=?, "
            "lease_owner=NULL, lease_expires_at=NULL WHERE id=?", (reason, now, job_id))
    parking.room_for(conn, [job_id])
    return True


#: The last failed attempt of a job (the claim wrote over its run time in the row).
_LAST_FAILED = "FROM runner_job_error WHERE job_id = :id ORDER BY id DESC LIMIT 1"
_CANCEL_UNSTARTED = (
    f"UPDATE runner_job SET state='cancelled', reason=:reason, attempt=attempt-1, "
    f"started_at=(SELECT started_at {_LAST_FAILED}), "
    f"finished_at=coalesce((SELECT failed_at {_LAST_FAILED}), :now), "
    f"lease_owner=NULL, lease_expires_at=NULL WHERE id=:id")


def hand_back(conn: sqlite3.Connection, job_id: str, attempt: int | None, *, now: float,
              reason: str | None) -> bool:
    """``executing`` → ``available`` (interrupted, or shutdown), while ``attempt`` is the
    one running; the attempt is not used. Returns whether it was written.

    Its worker gave the attempt up and writes no outcome of it (huey's retry count in
    the payload was not spent either), so the next run is that attempt again rather
    than one more: it reads as untried, not as a used attempt the limit never counted.
    """
    handed = conn.execute(
        "UPDATE runner_job SET state='available', attempt=attempt-1, reason=?, run_at=?, "
        "lease_owner=NULL, lease_expires_at=NULL WHERE id=? AND state='executing' "
        "AND (attempt=? OR ? IS NULL)", (reason, now, job_id, attempt, attempt)).rowcount == 1
    if handed:
        parking.room_for(conn, [job_id])
    return handed


def release(conn: sqlite3.Connection, job_id: str, run_at: float) -> None:
    """``executing`` → ``scheduled`` unstarted, due at ``run_at``; the attempt is not used."""
    conn.execute(
        "UPDATE runner_job SET state='scheduled', attempt=attempt-1, run_at=?, "
        "started_at=NULL, lease_owner=NULL, lease_expires_at=NULL WHERE id=?",
        (run_at, job_id))
    parking.room_for(conn, [job_id])


def unclaim(conn: sqlite3.Connection, job_ids: Sequence[str]) -> None:
    """``executing`` → ``available`` for jobs claimed but never started (a stopping worker)."""
    conn.executemany(
        "UPDATE runner_job SET state='available', attempt=attempt-1, lease_owner=NULL, "
        "lease_expires_at=NULL, started_at=NULL WHERE id=? AND state='executing'",
        [(job_id,) for job_id in job_ids])
    parking.room_for(conn, job_ids)


def set_progress(conn: sqlite3.Connection, job_id: str, done: float, total: float | None,
                 message: str | None) -> None:
    """Record a running job's progress (no change of state)."""
    conn.execute(
        "UPDATE runner_job SET progress_done=?, progress_total=?, progress_message=? "
        "WHERE id=?", (done, total, message, job_id))
