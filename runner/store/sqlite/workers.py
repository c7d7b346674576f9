"""Worker registry and orphan recovery: the data side of the lifeline.

A worker id is ``host:pid:started_ms``. A job whose lease expired, or whose
owner is a process on this host that no longer exists, is an orphan: it goes
back to ``available`` with its attempt still counted, or to ``dead`` ("worker
died") once it has been running during ``crash_limit`` worker deaths. Only an
attempt that its worker's running file (see :mod:`runner.store.sqlite.running_file`)
shows running is charged: a job the dead worker had claimed ahead of its idle
threads goes back as if never claimed, and so does one a live worker of this host
holds in the file but does not run (a file restored from a backup taken while the
job ran, which the worker finished since in the file the backup replaced). The
outcomes a dead worker kept beside its file, unwritten at its stop, are
committed first: those jobs end as their worker would have written, neither
charged a crash nor run again for it.
"""

from __future__ import annotations

import os
import sqlite3
import time

from runner.store.job_rows import Ack, Failed, FailureInfo
from runner.store.owners import (  # noqa: F401 - re-exported
    make_worker_id,
    node_of,
    parse_worker_id,
    pid_alive,
    worker_gone,
)
from runner.store.recovery import (
    Orphan,
    alive_here,
    cancelled_while_running,
    dead_here,
    idle_dead,
    nothing_to_recover,
    settle_orphans,
)
from runner.store.rows import Beat, Recovery  # noqa: F401 - re-exported
from runner.store.sqlite import cancels, transitions
from runner.store.sqlite.db import Database
from runner.store.sqlite.running_file import (
    forget,
    is_kept_outcomes,
    read_kept_outcomes,
    read_started,
    running_dir,
)
from runner.store.states import JobState, WorkerState, sql_is


def register(db: Database, owner: str, *, concurrency: int, queues: tuple[str, ...],
             clock_offset: float | None = None, now: float | None = None) -> None:
    """Record a worker process as running."""
    at = time.time() if now is None else now
    host, pid = parse_worker_id(owner)
    db.write(lambda c: c.execute(
        "INSERT OR REPLACE INTO runner_worker (id, host, pid, started_at, heartbeat_at, state, "
        "concurrency, queues, clock_offset) VALUES (?,?,?,?,?,?,?,?,?)",
        (owner, host, pid or 0, at, at, WorkerState.RUNNING.value, concurrency,
         ",".join(queues) or "*", clock_offset)))


def heartbeat(db: Database, owner: str, job_ids: list[str], *, lease_seconds: float,
              rss_bytes: int | None = None, cpu_percent: float | None = None,
              processed: int | None = None, status: str | None = None,
              running: int | None = None, clock_offset: float | None = None,
              now: float | None = None) -> Beat:
    """Say this worker is alive and extend the leases of the jobs it runs; which it holds.

    ``running`` counts the jobs a thread runs now; the other ``job_ids`` are
    prefetched (claimed, waiting in the process). Default: all of them.
    """
    at = time.time() if now is None else now

    def beat(conn: sqlite3.Connection) -> Beat:
        known = conn.execute(
            "UPDATE runner_worker SET heartbeat_at=?, rss_bytes=coalesce(?, rss_bytes), "
            "cpu_percent=coalesce(?, cpu_percent), running=?, "
            "processed=coalesce(?, processed), status=coalesce(?, status), "
            "clock_offset=coalesce(?, clock_offset) WHERE id=?",
            (at, rss_bytes, cpu_percent, len(job_ids) if running is None else running,
             processed, status, clock_offset, owner)).rowcount > 0
        if not job_ids:
            return Beat(frozenset(), known=known)
        return Beat(transitions.extend_leases(conn, owner, job_ids,
                                              expires_at=at + lease_seconds), known=known)

    return db.write(beat)


def mark_stopped(db: Database, owner: str, now: float | None = None) -> None:
    """Record a clean exit of a worker process."""
    at = time.time() if now is None else now
    db.write(lambda c: c.execute(
        "UPDATE runner_worker SET state=?, stopped_at=?, running=0 WHERE id=?",
        (WorkerState.STOPPED.value, at, owner)))


def recover_orphans(db: Database, *, crash_limit: int, me: str | None = None,
                    now: float | None = None, grace: float = 0.0) -> Recovery:
    """Requeue (or bury) jobs whose worker is gone.

    Orphans are jobs in ``executing`` whose lease expired, or whose owner is a
    process of this host that no longer exists (found at once, no lease wait).
    The caller's own jobs count too once their lease expired: the heartbeat that
    runs just before extends every lease it still holds, so an expired one is a
    job whose outcome could not be written (a full disk, say), charged a crash, or
    one it does not run at all (a restored file), requeued uncharged. A lease counts
    as expired ``grace`` seconds after its expiry (see :mod:`runner.worker.write_gaps`).
    """
    at = time.time() if now is None else now
    expired_before = at - grace
    host = node_of(me)
    with db.read() as conn:
        rows = transitions.lease_owners(conn)
    dead = dead_here((owner for owner, _ in rows), me, host)
    forget_stale_files(db, host, {owner for owner, _ in rows if owner})
    idle = idle_dead([w for (w,) in db.query(
        f"SELECT id FROM runner_worker WHERE state={sql_is(WorkerState.RUNNING)}")],
        me, dead, host)
    if nothing_to_recover(dead, idle, (expires for _, expires in rows), expired_before):
        return Recovery([], [])
    # A live worker's file is read too: a job leased to it in the file whose attempt it
    # is not running has no outcome coming, and no crash to charge.
    alive = alive_here((owner for owner, _ in rows), me, host, dead)
    started = {owner: read_started(db.path, owner) for owner in (*dead, *alive)}
    kept = [o for owner in dead for o in read_kept_outcomes(db.path, owner)]

    def cancel(conn: sqlite3.Connection, orphan: Orphan, reason: str) -> None:
        transitions.cancel_attempt(conn, orphan.id, orphan.attempt, now=at, reason=reason)
        cancels.forget_cancel(conn, orphan.id)

    def recover(conn: sqlite3.Connection) -> Recovery:
        buried = write_kept(conn, kept)  # as their worker would have: then no orphans
        recovery = settle_orphans(
            transitions.orphans(conn, expired_before=expired_before, dead_owners=dead), me,
            cancelled_by=lambda o: cancels.requested_by(conn, o.id, o.attempt),
            started=lambda owner: started.get(owner or ""),
            cancel=lambda o, reason: cancel(conn, o, reason),
            requeue_unstarted=lambda o, reason: transitions.requeue_unstarted(
                conn, o.id, now=at, reason=reason),
            charge=lambda o, message: transitions.charge_crash(
                conn, o, message, crash_limit=crash_limit, error_type="WorkerDied", now=at),
            alive=alive)
        gone = dead + idle
        if gone:
            conn.execute(
                f"UPDATE runner_worker SET state={sql_is(WorkerState.DEAD)}, stopped_at=?, "
                f"running=0 WHERE id IN ({','.join('?' * len(gone))}) "
                f"AND state={sql_is(WorkerState.RUNNING)}", (at, *gone))
        return Recovery(recovery.requeued, [*buried, *recovery.buried])

    recovery = db.write(recover)
    for owner in dead:
        forget(db.path, owner)
    return recovery


def write_kept(conn: sqlite3.Connection, kept: list[Ack | Failed]) -> list[str]:
    """Commit the outcomes a dead worker kept at its stop; the jobs they bury (whose
    ``on_failure`` is owed). An attempt no longer holding its job writes nothing."""
    acks = [o for o in kept if isinstance(o, Ack)]
    if acks:
        transitions.complete(conn, acks)
    buried = []
    for f in kept:
        if isinstance(f, Ack) or not transitions.holds(conn, f.job_id, f.attempt):
            continue
        if f.state == JobState.RETRYING.value:
            transitions.retry(conn, f.job_id, f.attempt, f.failure, worker=f.worker, now=f.now,
                              run_at=f.run_at, reason=f.reason, data=f.data,
                              results=f.results, jobs=f.jobs)
        else:
            transitions.bury(conn, f.job_id, f.attempt, f.failure, worker=f.worker, now=f.now,
                             reason=f.reason, results=f.results, jobs=f.jobs)
            buried.append(f.job_id)
    return buried


def forget_stale_files(db: Database, host: str, holding: set[str]) -> None:
    """Remove running files of this host's dead workers that hold no job any more."""
    try:
        names = [p.name for p in running_dir(db.path).iterdir()]
    except OSError:
        return
    for name in names:
        if is_kept_outcomes(name):  # removed with its worker's file, once applied
            continue
        owner_host, pid = parse_worker_id(name)
        if owner_host == host and pid is not None and pid != os.getpid() \
                and name not in holding and not pid_alive(pid):
            forget(db.path, name)


def charge_stuck(db: Database, job_id: str, attempt: int, owner: str, failure: FailureInfo,
                 *, run_at: float | None = None, data: bytes | None = None,
                 reason: str | None = None, now: float | None = None) -> str | None:
    """A running attempt is stuck past its timeout: a failed attempt, retried at ``run_at``
    or dead without it; or, when someone asked to cancel it, cancelled as asked (see
    :meth:`runner.store.worker_presence.WorkerPresence.charge_stuck`).

    Returns the job's new state (``retrying``, ``dead`` or ``cancelled``), or None
    when that attempt was no longer running under ``owner``.
    """
    at = time.time() if now is None else now

    def charge(conn: sqlite3.Connection) -> str | None:
        if transitions.running_attempt(conn, job_id, attempt, owner) is None:
            return None
        by = cancels.running_cancel(conn, job_id, attempt)
        if by is not None:
            # Its worker could not stop it: retried, it would run again.
            transitions.cancel_attempt(conn, job_id, attempt, now=at,
                                       reason=cancelled_while_running(by))
            cancels.forget_cancel(conn, job_id)
            return JobState.CANCELLED
        if run_at is None:
            transitions.bury(conn, job_id, attempt, failure, worker=owner, now=at, reason=reason)
            return JobState.DEAD
        transitions.retry(conn, job_id, attempt, failure, worker=owner, now=at, run_at=run_at,
                          reason=reason, data=data)
        return JobState.RETRYING

    return db.write(charge)


def prune_workers(db: Database, *, older_than: float, now: float | None = None) -> int:
    """Forget worker rows that stopped or went silent long ago."""
    at = time.time() if now is None else now
    return db.write(lambda c: c.execute(
        "DELETE FROM runner_worker WHERE heartbeat_at < ?", (at - older_than,)).rowcount)
