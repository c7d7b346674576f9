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

from runner.store import transitions
from runner.store.db import Database
from runner.store.states import WorkerState, sql_is


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
        "concurrency, queues) VALUES (?,?,?,?,?,?,?,?)",
        (owner, host, pid or 0, at, at, WorkerState.RUNNING.value, concurrency,
         ",".join(queues) or "*")))


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
            transitions.extend_leases(conn, owner, job_ids, expires_at=at + lease_seconds)

    db.write(beat)


def mark_stopped(db: Database, owner: str, now: float | None = None) -> None:
    """Record a clean exit of a worker process."""
    at = time.time() if now is None else now
    db.write(lambda c: c.execute(
        "UPDATE runner_worker SET state=?, stopped_at=?, running=0 WHERE id=?",
        (WorkerState.STOPPED.value, at, owner)))


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
    with db.read() as conn:
        rows = transitions.lease_owners(conn)
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
        requeued, buried = [], []
        for orphan in transitions.orphans(conn, now=at, dead_owners=dead_here):
            attempt = orphan.attempt
            message = (f"worker {orphan.owner} died while attempt {attempt} was running"
                       if orphan.owner != me else
                       f"lease of attempt {attempt} expired: its outcome could not be written")
            if crash_limit and orphan.crashes + 1 >= crash_limit:
                transitions.bury_orphan(conn, orphan, now=at, message=message)
                buried.append(orphan.id)
            else:
                transitions.requeue_orphan(conn, orphan, now=at, message=message)
                requeued.append(orphan.id)
        if dead_here:
            conn.execute(
                f"UPDATE runner_worker SET state={sql_is(WorkerState.DEAD)}, stopped_at=? "
                f"WHERE id IN ({','.join('?' * len(dead_here))}) "
                f"AND state={sql_is(WorkerState.RUNNING)}", (at, *dead_here))
        return Recovery(requeued, buried)

    return db.write(recover)


def prune_workers(db: Database, *, older_than: float, now: float | None = None) -> int:
    """Forget worker rows that stopped or went silent long ago."""
    at = time.time() if now is None else now
    return db.write(lambda c: c.execute(
        "DELETE FROM runner_worker WHERE heartbeat_at < ?", (at - older_than,)).rowcount)
