"""Worker registry and orphan recovery: the data side of the lifeline.

A worker id is ``host:pid:started_ms``. A job whose lease expired, or whose
owner is a process on this host that no longer exists, is an orphan: it goes
back to ``available`` with its attempt still counted, or to ``dead`` ("worker
died") once it has been running during ``crash_limit`` worker deaths. Only an
attempt that had started is charged: a job the dead worker had claimed ahead of
its idle threads goes back as if never claimed (see :mod:`runner.store.running_file`).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from dataclasses import dataclass

from runner.store.counters import count_where
from runner.store.db import Database
from runner.store.running_file import forget, read_started, running_dir


def make_worker_id(now: float | None = None) -> str:
    """A new worker id for this process."""
    started = time.time() if now is None else now
    return f"{socket.gethostname()}:{os.getpid()}:{int(started * 1000)}"


def parse_worker_id(owner: str) -> tuple[str, int | None]:
    """(host, pid) of a worker id; pid None when it cannot be read."""
    host, _, rest = owner.rpartition(":")
    host, _, pid = host.rpartition(":")
    return host, int(pid) if pid.isdigit() else None


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_gone(owner: str, host: str | None = None) -> bool:
    """True when ``owner`` is a worker of this host whose process no longer exists."""
    owner_host, pid = parse_worker_id(owner)
    here = socket.gethostname() if host is None else host
    return owner_host == here and pid is not None and not pid_alive(pid)


@dataclass(frozen=True)
class Recovery:
    """What one recovery pass did."""

    requeued: list[str]
    buried: list[str]


def register(db: Database, owner: str, *, concurrency: int, queues: tuple[str, ...],
             now: float | None = None) -> None:
    """Record a worker process as running."""
    at = time.time() if now is None else now
    host, pid = parse_worker_id(owner)
    db.write(lambda c: c.execute(
        "INSERT OR REPLACE INTO runner_worker (id, host, pid, started_at, heartbeat_at, state, "
        "concurrency, queues) VALUES (?,?,?,?,?,'running',?,?)",
        (owner, host, pid or 0, at, at, concurrency, ",".join(queues) or "*")))


def heartbeat(db: Database, owner: str, job_ids: list[str], *, lease_seconds: float,
              rss_bytes: int | None = None, cpu_percent: float | None = None,
              processed: int | None = None, status: str | None = None,
              running: int | None = None, now: float | None = None) -> None:
    """Say this worker is alive and extend the leases of the jobs it runs.

    ``running`` counts the jobs a thread runs now; the other ``job_ids`` are
    prefetched (claimed, waiting in the process). Default: all of them.
    """
    at = time.time() if now is None else now

    def beat(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE runner_worker SET heartbeat_at=?, rss_bytes=coalesce(?, rss_bytes), "
            "cpu_percent=coalesce(?, cpu_percent), running=?, "
            "processed=coalesce(?, processed), status=coalesce(?, status) WHERE id=?",
            (at, rss_bytes, cpu_percent, len(job_ids) if running is None else running,
             processed, status, owner))
        if job_ids:
            conn.executemany(
                "UPDATE runner_job SET lease_expires_at=? WHERE id=? AND lease_owner=? "
                "AND state='executing'",
                [(at + lease_seconds, job_id, owner) for job_id in job_ids])

    db.write(beat)


def mark_stopped(db: Database, owner: str, now: float | None = None) -> None:
    """Record a clean exit of a worker process."""
    at = time.time() if now is None else now
    db.write(lambda c: c.execute(
        "UPDATE runner_worker SET state='stopped', stopped_at=?, running=0 WHERE id=?",
        (at, owner)))


def recover_orphans(db: Database, *, crash_limit: int, me: str | None = None,
                    now: float | None = None) -> Recovery:
    """Requeue (or bury) jobs whose worker is gone.

    Orphans are jobs in ``executing`` whose lease expired, or whose owner is a
    process of this host that no longer exists (found at once, no lease wait).
    The caller's own jobs count too once their lease expired: the heartbeat that
    runs just before extends every lease it still holds, so an expired one is a
    job whose outcome could not be written (a full disk, say).
    """
    at = time.time() if now is None else now
    host = socket.gethostname()
    rows = db.query("SELECT lease_owner, min(lease_expires_at) FROM runner_job "
                    "WHERE state='executing' GROUP BY lease_owner")
    dead_here = []
    for owner, _ in rows:
        if owner is None or owner == me:
            continue
        owner_host, pid = parse_worker_id(owner)
        if owner_host == host and pid is not None and (pid == os.getpid() or not pid_alive(pid)):
            dead_here.append(owner)
    forget_stale_files(db, host, {owner for owner, _ in rows if owner})
    # A worker killed while idle holds no job, but its row must not stay 'running'.
    idle_dead = [w for (w,) in db.query("SELECT id FROM runner_worker WHERE state='running'")
                 if w != me and w not in dead_here and worker_gone(w, host)]
    if not dead_here and not idle_dead and not any(
            expires is not None and expires < at for _, expires in rows):
        return Recovery([], [])  # nothing to recover: no write transaction
    started = {owner: read_started(db.path, owner) for owner in dead_here}

    def recover(conn: sqlite3.Connection) -> Recovery:
        marks = ",".join("?" * len(dead_here))
        who = f" OR lease_owner IN ({marks})" if dead_here else ""
        rows = conn.execute(
            f"SELECT id, lease_owner, attempt, crashes, started_at FROM runner_job "
            f"WHERE state='executing' AND (lease_expires_at < ?{who})",
            (at, *dead_here)).fetchall()
        requeued, buried = [], []
        for job_id, owner, attempt, crashes, started_at in rows:
            ran = started.get(owner)
            if ran is not None and (job_id, attempt) not in ran:
                conn.execute(
                    "UPDATE runner_job SET state='available', attempt=attempt-1, run_at=?, "
                    "started_at=NULL, reason='claimed by a worker that died before starting "
                    "it; requeued', lease_owner=NULL, lease_expires_at=NULL WHERE id=?",
                    (at, job_id))
                requeued.append(job_id)
                continue
            message = (f"worker {owner} died while attempt {attempt} was running"
                       if owner != me else
                       f"lease of attempt {attempt} expired: its outcome could not be written")
            if charge_crash(conn, job_id, owner, attempt, crashes, started_at, message,
                            crash_limit=crash_limit, error_type="WorkerDied", now=at):
                buried.append(job_id)
            else:
                requeued.append(job_id)
        gone = dead_here + idle_dead
        if gone:
            conn.execute(
                f"UPDATE runner_worker SET state='dead', stopped_at=?, running=0 WHERE id IN "
                f"({','.join('?' * len(gone))}) AND state='running'", (at, *gone))
        return Recovery(requeued, buried)

    recovery = db.write(recover)
    for owner in dead_here:
        forget(db.path, owner)
    return recovery


def forget_stale_files(db: Database, host: str, holding: set[str]) -> None:
    """Remove running files of this host's dead workers that hold no job any more."""
    try:
        names = [p.name for p in running_dir(db.path).iterdir()]
    except OSError:
        return
    for name in names:
        owner_host, pid = parse_worker_id(name)
        if owner_host == host and pid is not None and pid != os.getpid() \
                and name not in holding and not pid_alive(pid):
            forget(db.path, name)


def charge_crash(conn: sqlite3.Connection, job_id: str, owner: str | None, attempt: int,
                 crashes: int, started_at: float | None, message: str, *, crash_limit: int,
                 error_type: str, now: float) -> bool:
    """Charge a crash to a running attempt: requeued, or dead at ``crash_limit``; True if dead."""
    crashes += 1
    conn.execute(
        "INSERT INTO runner_job_error (job_id, attempt, kind, error_type, message, "
        "traceback, worker, started_at, failed_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (job_id, attempt, "crash", error_type, message, "", owner, started_at, now))
    if crash_limit and crashes >= crash_limit:
        reason = ("worker died" if error_type == "WorkerDied" else "stuck") + \
            f" ({crashes} times while running it)"
        count_where(conn, "dead", "id = ?", (job_id,))
        conn.execute(
            "UPDATE runner_job SET state='dead', crashes=?, finished_at=?, reason=?, "
            "error_type=?, error_message=?, lease_owner=NULL, lease_expires_at=NULL "
            "WHERE id=?", (crashes, now, reason, error_type, message, job_id))
        return True
    reason = "worker died; requeued" if error_type == "WorkerDied" else "stuck; requeued"
    count_where(conn, "retried", "id = ?", (job_id,))
    conn.execute(
        "UPDATE runner_job SET state='available', crashes=?, run_at=?, reason=?, "
        "lease_owner=NULL, lease_expires_at=NULL WHERE id=?", (crashes, now, reason, job_id))
    return False


def charge_stuck(db: Database, job_id: str, attempt: int, owner: str, message: str, *,
                 crash_limit: int, now: float | None = None) -> str | None:
    """A running attempt is stuck past its timeout: charge it a crash, as a worker death.

    Returns the job's new state (``available`` or ``dead``), or None when that
    attempt was no longer running under ``owner``.
    """
    at = time.time() if now is None else now

    def charge(conn: sqlite3.Connection) -> str | None:
        row = conn.execute(
            "SELECT crashes, started_at FROM runner_job WHERE id=? AND attempt=? "
            "AND state='executing' AND lease_owner=?", (job_id, attempt, owner)).fetchone()
        if row is None:
            return None
        dead = charge_crash(conn, job_id, owner, attempt, row[0], row[1], message,
                            crash_limit=crash_limit, error_type="JobStuck", now=at)
        return "dead" if dead else "available"

    return db.write(charge)


def prune_workers(db: Database, *, older_than: float, now: float | None = None) -> int:
    """Forget worker rows that stopped or went silent long ago."""
    at = time.time() if now is None else now
    return db.write(lambda c: c.execute(
        "DELETE FROM runner_worker WHERE heartbeat_at < ?", (at - older_than,)).rowcount)
