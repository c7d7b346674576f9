"""Worker registry and orphan recovery: the data side of the lifeline.

A worker id is ``host:pid:started_ms``. A job whose lease expired, or whose
owner is a process on this host that no longer exists, is an orphan: it goes
back to ``available`` with its attempt still counted, or to ``dead`` ("worker
died") once it has been running during ``crash_limit`` worker deaths.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from dataclasses import dataclass

from runner.store.counters import count_where
from runner.store.db import Database


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
              now: float | None = None) -> None:
    """Say this worker is alive and extend the leases of the jobs it runs."""
    at = time.time() if now is None else now

    def beat(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE runner_worker SET heartbeat_at=?, rss_bytes=coalesce(?, rss_bytes), "
            "cpu_percent=coalesce(?, cpu_percent), running=?, "
            "processed=coalesce(?, processed), status=coalesce(?, status) WHERE id=?",
            (at, rss_bytes, cpu_percent, len(job_ids), processed, status, owner))
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
    if not dead_here and not any(expires is not None and expires < at for _, expires in rows):
        return Recovery([], [])  # nothing to recover: no write transaction

    def recover(conn: sqlite3.Connection) -> Recovery:
        marks = ",".join("?" * len(dead_here))
        who = f" OR lease_owner IN ({marks})" if dead_here else ""
        rows = conn.execute(
            f"SELECT id, lease_owner, attempt, crashes, started_at FROM runner_job "
            f"WHERE state='executing' AND (lease_expires_at < ?{who})",
            (at, *dead_here)).fetchall()
        requeued, buried = [], []
        for job_id, owner, attempt, crashes, started_at in rows:
            crashes += 1
            message = (f"worker {owner} died while attempt {attempt} was running"
                       if owner != me else
                       f"lease of attempt {attempt} expired: its outcome could not be written")
            conn.execute(
                "INSERT INTO runner_job_error (job_id, attempt, kind, error_type, message, "
                "traceback, worker, started_at, failed_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (job_id, attempt, "crash", "WorkerDied", message, "", owner, started_at, at))
            if crash_limit and crashes >= crash_limit:
                conn.execute(
                    "UPDATE runner_job SET state='dead', crashes=?, finished_at=?, "
                    "reason=?, error_type='WorkerDied', error_message=?, lease_owner=NULL, "
                    "lease_expires_at=NULL WHERE id=?",
                    (crashes, at, f"worker died ({crashes} times while running it)",
                     message, job_id))
                buried.append(job_id)
            else:
                conn.execute(
                    "UPDATE runner_job SET state='available', crashes=?, run_at=?, "
                    "reason='worker died; requeued', lease_owner=NULL, lease_expires_at=NULL "
                    "WHERE id=?", (crashes, at, job_id))
                requeued.append(job_id)
        for outcome, ids in (("dead", buried), ("retried", requeued)):
            if ids:
                count_where(conn, outcome, f"id IN ({','.join('?' * len(ids))})", ids)
        if dead_here:
            conn.execute(
                f"UPDATE runner_worker SET state='dead', stopped_at=? WHERE id IN ({marks}) "
                "AND state='running'", (at, *dead_here))
        return Recovery(requeued, buried)

    return db.write(recover)


def prune_workers(db: Database, *, older_than: float, now: float | None = None) -> int:
    """Forget worker rows that stopped or went silent long ago."""
    at = time.time() if now is None else now
    return db.write(lambda c: c.execute(
        "DELETE FROM runner_worker WHERE heartbeat_at < ?", (at - older_than,)).rowcount)
