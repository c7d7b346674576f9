"""PostgreSQL: the worker registry, heartbeats, orphan recovery and named leases.

Across hosts: a job whose lease expired comes back whatever host ran it; a job
whose owner is a process of *this* host that no longer exists comes back at
once (its pid is checked here, where it means something). Orphans are locked
as they are read, so two hosts recovering at once charge each crash once.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.worker_presence`.
"""

from __future__ import annotations

import time

import psycopg

from runner.store.backend import AttemptLog
from runner.store.job_rows import FailureInfo
from runner.store.owners import node_of, parse_worker_id
from runner.store.postgres import attempts, transitions
from runner.store.postgres import flow_control as control
from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.key_values import release_lease, take_lease
from runner.store.recovery import (
    Orphan,
    alive_here,
    cancelled_while_running,
    dead_here,
    idle_dead,
    nothing_to_recover,
    settle_orphans,
)
from runner.store.rows import Beat, Recovery
from runner.store.states import JobState, WorkerState, sql_is

_RUNNING = sql_is(WorkerState.RUNNING)


def server_now(db: PgDatabase) -> float:
    """The server's clock; ``clock_timestamp()``, not ``now()``, which is the start of
    the transaction."""
    return float(db.query("SELECT extract(epoch FROM clock_timestamp())::float8")[0][0])


class PostgresWorkers:
    """:class:`runner.store.worker_presence.WorkersStore` on a PostgreSQL database."""

    db: PgDatabase

    def attempt_log(self, owner: str) -> AttemptLog:
        return attempts.AttemptLog(self.db, owner)

    def server_time(self) -> float | None:
        return server_now(self.db)

    def register(self, owner: str, *, concurrency: int, queues: tuple[str, ...],
                 clock_offset: float | None = None, now: float | None = None) -> None:
        """Record a worker process as running."""
        db = self.db
        at = time.time() if now is None else now
        host, pid = parse_worker_id(owner)
        db.write(lambda c: c.execute(
            "INSERT INTO runner_worker (id, host, pid, started_at, heartbeat_at, state, "
            "concurrency, queues, clock_offset) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (id) DO UPDATE SET "
            "host = excluded.host, pid = excluded.pid, started_at = excluded.started_at, "
            "heartbeat_at = excluded.heartbeat_at, state = excluded.state, "
            "concurrency = excluded.concurrency, queues = excluded.queues, stopped_at = NULL, "
            "rss_bytes = NULL, cpu_percent = NULL, running = 0, processed = 0, status = NULL, "
            "clock_offset = excluded.clock_offset",
            (owner, host, pid or 0, at, at, WorkerState.RUNNING.value, concurrency,
             ",".join(queues) or "*", clock_offset)))

    def heartbeat(self, owner: str, job_ids: list[str], *, lease_seconds: float,
                  rss_bytes: int | None = None, cpu_percent: float | None = None,
                  processed: int | None = None, status: str | None = None,
                  running: int | None = None, clock_offset: float | None = None,
                  now: float | None = None) -> Beat:
        """Say this worker is alive and extend the leases of the jobs it runs; which it
        holds, and the server's clock read on the way."""
        db = self.db
        at = time.time() if now is None else now

        def beat(conn: psycopg.Connection) -> Beat:
            # clock_timestamp(), not now(): the time of this statement, not of the BEGIN.
            server, known = conn.execute(
                "WITH beat AS (UPDATE runner_worker SET heartbeat_at = %s, "
                "rss_bytes = coalesce(%s, rss_bytes), cpu_percent = coalesce(%s, cpu_percent), "
                "running = %s, processed = coalesce(%s, processed), "
                "status = coalesce(%s, status), clock_offset = coalesce(%s, clock_offset) "
                "WHERE id = %s RETURNING 1) SELECT extract(epoch FROM clock_timestamp())::float8, "
                "EXISTS (SELECT 1 FROM beat)",
                (at, rss_bytes, cpu_percent, len(job_ids) if running is None else running,
                 processed, status, clock_offset, owner)).fetchone()
            if not job_ids:
                # The lock a lease renewal takes, taken anyway: a lock on the jobs table
                # that holds other workers' renewals back holds this heartbeat back too,
                # so that this worker knows to give their leases the time they lost.
                conn.execute("LOCK TABLE runner_job IN ROW EXCLUSIVE MODE")
                return Beat(frozenset(), float(server), known)
            return Beat(transitions.extend_leases(conn, owner, job_ids,
                                                  expires_at=at + lease_seconds), float(server),
                        known)

        return db.write(beat)

    def mark_stopped(self, owner: str, now: float | None = None) -> None:
        """Record a clean exit of a worker process."""
        db = self.db
        at = time.time() if now is None else now
        db.write(lambda c: c.execute(
            "UPDATE runner_worker SET state = %s, stopped_at = %s, running = 0 WHERE id = %s",
            (WorkerState.STOPPED.value, at, owner)))

    def recover_orphans(self, *, crash_limit: int, me: str | None = None,
                        now: float | None = None, grace: float = 0.0) -> Recovery:
        """Requeue (or bury) jobs whose worker is gone: lease expired (``grace`` seconds
        ago), or a dead pid of this host.

        An attempt its worker never started (see :mod:`runner.store.postgres.attempts`)
        goes back uncharged.
        """
        db = self.db
        at = time.time() if now is None else now
        expired_before = at - grace
        host = node_of(me)
        rows = db.query("SELECT lease_owner, min(lease_expires_at) FROM runner_job "
                        "WHERE state = %s GROUP BY lease_owner", (transitions._EXECUTING,))
        dead = dead_here((owner for owner, _ in rows), me, host)
        alive = alive_here((owner for owner, _ in rows), me, host, dead)
        idle = idle_dead([w for (w,) in db.query(
            f"SELECT id FROM runner_worker WHERE state = {_RUNNING}")], me, dead, host)
        if nothing_to_recover(dead, idle, (expires for _, expires in rows), expired_before):
            return Recovery([], [])

        def cancel(conn: psycopg.Connection, orphan: Orphan, reason: str) -> None:
            transitions.cancel_attempt(conn, orphan.id, orphan.attempt, now=at, reason=reason)
            control.forget_cancel(conn, orphan.id)

        def recover(conn: psycopg.Connection) -> Recovery:
            found = transitions.orphans(conn, expired_before=expired_before, dead_owners=dead)
            ran_by = attempts.read_started(conn, sorted({o.owner for o in found if o.owner}))
            recovery = settle_orphans(
                found, me, cancelled_by=lambda o: control.requested_by(conn, o.id, o.attempt),
                started=lambda owner: ran_by.get(owner or ""),
                cancel=lambda o, reason: cancel(conn, o, reason),
                requeue_unstarted=lambda o, reason: transitions.requeue_unstarted(
                    conn, o.id, now=at, reason=reason),
                charge=lambda o, message: transitions.charge_crash(
                    conn, o, message, crash_limit=crash_limit, error_type="WorkerDied", now=at),
                alive=alive)
            if recovery.requeued:
                transitions.notify(conn, db.channel)
            gone = dead + idle
            if gone:
                attempts.forget(conn, gone)
                conn.execute(f"UPDATE runner_worker SET state = %s, stopped_at = %s, running = 0 "
                             f"WHERE id = ANY(%s) AND state = {_RUNNING}",
                             (WorkerState.DEAD.value, at, gone))
            return recovery

        return db.write(recover)

    def prune_workers(self, *, older_than: float, now: float | None = None) -> int:
        """Forget worker rows that stopped or went silent long ago."""
        db = self.db
        at = time.time() if now is None else now
        return db.write(lambda c: c.execute(
            "DELETE FROM runner_worker WHERE heartbeat_at < %s", (at - older_than,)).rowcount)

    def charge_stuck(self, job_id: str, attempt: int, owner: str, failure: FailureInfo, *,
                     run_at: float | None = None, data: bytes | None = None,
                     reason: str | None = None, now: float | None = None) -> str | None:
        """A running attempt is stuck past its timeout: a failed attempt, retried at
        ``run_at`` or dead without it; cancelled when someone asked to (see SQLite's).

        Returns the job's new state, or None when that attempt no longer runs under ``owner``.
        """
        db = self.db
        at = time.time() if now is None else now

        def charge(conn: psycopg.Connection) -> str | None:
            if transitions.running_attempt(conn, job_id, attempt, owner) is None:
                return None
            by = control.running_cancel(conn, job_id, attempt)
            if by is not None:
                # Its worker could not stop it: retried, it would run again.
                transitions.cancel_attempt(conn, job_id, attempt, now=at,
                                           reason=cancelled_while_running(by))
                control.forget_cancel(conn, job_id)
                return JobState.CANCELLED
            state = JobState.DEAD if run_at is None else JobState.RETRYING
            transitions.fail(conn, job_id, attempt, failure, state, worker=owner, now=at,
                             run_at=run_at, reason=reason, data=data)
            return state

        return db.write(charge)

    def take_lease(self, name: str, owner: str, ttl: float, *,
                   now: float | None = None) -> bool:
        return take_lease(self.db, name, owner, ttl, now=now)

    def release_lease(self, name: str, owner: str) -> None:
        release_lease(self.db, name, owner)
