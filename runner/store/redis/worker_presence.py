"""Worker registry and the lifeline on Redis: heartbeats extend leases, the dead are reaped.

A worker's claimed jobs sit in its in-flight set (``inflight:<owner>``) and in
``leases`` by expiry. A job is an orphan when its lease expired, or when its
owner is a process of this host that no longer exists (found at once); the
``recover`` script requeues it (or buries it after ``crash_limit`` deaths),
charging a crash only to an attempt its worker is running, or was when it died
(the owner's running file says which, as on SQLite).
"""

from __future__ import annotations

import time

from runner.store.backend import AttemptLog
from runner.store.job_rows import FailureInfo
from runner.store.owners import node_of, parse_worker_id
from runner.store.recovery import alive_here, dead_here, idle_dead, unstarted_reason
from runner.store.redis.codec import arg
from runner.store.redis.connection import RedisBase
from runner.store.rows import Beat, Recovery
from runner.store.sqlite.running_file import RunningFile, forget, read_started, running_path
from runner.store.states import JobState, WorkerState


class RedisWorkers(RedisBase):
    """:class:`runner.store.worker_presence.WorkersStore` on Redis."""

    def register(self, owner: str, *, concurrency: int, queues: tuple[str, ...],
                 clock_offset: float | None = None, now: float | None = None) -> None:
        at = time.time() if now is None else now
        host, pid = parse_worker_id(owner)
        key = self.k("worker", owner)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(key)
        fields = {"id": owner, "host": host, "pid": pid or 0, "started_at": at,
                  "heartbeat_at": at, "state": WorkerState.RUNNING.value,
                  "concurrency": concurrency, "queues": ",".join(queues) or "*",
                  "running": 0, "processed": 0}
        if clock_offset is not None:
            fields["clock_offset"] = clock_offset
        pipe.hset(key, mapping=fields)
        pipe.zadd(self.k("workers"), {owner: at})
        pipe.execute()

    def heartbeat(self, owner: str, job_ids: list[str], *, lease_seconds: float,
                  rss_bytes: int | None = None, cpu_percent: float | None = None,
                  processed: int | None = None, status: str | None = None,
                  running: int | None = None, clock_offset: float | None = None,
                  now: float | None = None) -> Beat:
        at = time.time() if now is None else now
        fields = {"rss_bytes": rss_bytes, "cpu_percent": cpu_percent, "processed": processed,
                  "status": status, "running": len(job_ids) if running is None else running,
                  "clock_offset": clock_offset}
        flat: list[object] = []
        for name, value in fields.items():
            flat += [name, arg(value)]
        reply = self.run("heartbeat", owner, arg(float(at)), arg(float(lease_seconds)),
                         len(fields), *flat, *job_ids)  # type: ignore[arg-type]
        seconds, micros, known, *held = reply  # type: ignore[misc]
        return Beat(frozenset(h.decode() for h in held), int(seconds) + int(micros) / 1e6,
                    bool(int(known)))

    def mark_stopped(self, owner: str, now: float | None = None) -> None:
        at = time.time() if now is None else now
        key = self.k("worker", owner)
        if self.r.exists(key):
            self.r.hset(key, mapping={"state": WorkerState.STOPPED.value, "stopped_at": at,
                                      "running": 0})
        if not self.r.scard(self.k("inflight", owner)):  # else the lifeline still needs it
            self.r.srem(self.k("owners"), owner)

    def recover_orphans(self, *, crash_limit: int, me: str | None = None,
                        now: float | None = None, grace: float = 0.0) -> Recovery:
        at = time.time() if now is None else now
        expired_before = at - grace
        host = node_of(me)  # this host's workers are named by its node name
        owners = [o.decode() for o in self.r.smembers(self.k("owners"))]
        dead = dead_here(owners, me, host)
        alive = alive_here(owners, me, host, dead)
        running = [w.decode() for w in self.r.zrange(self.k("workers"), 0, -1)]
        states = self._worker_states(running)
        idle = idle_dead([w for w, s in zip(running, states, strict=True)
                          if s == WorkerState.RUNNING.value], me, dead, host)
        expired = [i.decode() for i in self.r.zrangebyscore(self.k("leases"), "-inf",
                                                           f"({expired_before}")]
        suspects = set(expired)
        for owner in dead:
            suspects.update(i.decode() for i in self.r.smembers(self.k("inflight", owner)))
        if not suspects and not idle and not dead:
            return Recovery([], [])
        # A live worker's file is read too: a job leased to it whose attempt it is not
        # running (data restored from a backup) has no outcome coming, and no crash to charge.
        started = {owner: read_started(self.path, owner) for owner in (*dead, *alive)}
        ids = sorted(suspects)
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self.k("job", job_id), "lease_owner", "attempt", "state")
        flat: list[object] = []
        for job_id, (owner, attempt, state) in zip(ids, pipe.execute(), strict=True):
            if owner is None or state != JobState.EXECUTING.value.encode():
                continue
            who, number_ = owner.decode(), int(attempt)
            ran = started.get(who)
            unstarted = ran is not None and (job_id, number_) not in ran
            flat += [job_id, who, number_, unstarted_reason(who, me, alive) if unstarted else ""]
        requeued, buried = self.run("recover", arg(float(at)), arg(float(expired_before)),
                                    int(crash_limit), arg(me), len(dead), *dead, *flat)  # type: ignore[misc]
        gone = dead + idle
        for owner in gone:
            key = self.k("worker", owner)
            if self.r.hget(key, "state") == WorkerState.RUNNING.value.encode():
                self.r.hset(key, mapping={"state": WorkerState.DEAD.value, "stopped_at": at,
                                          "running": 0})
        for owner in dead:
            forget(self.path, owner)
        return Recovery([i.decode() for i in requeued], [i.decode() for i in buried])

    def charge_stuck(self, job_id: str, attempt: int, owner: str, failure: FailureInfo, *,
                     run_at: float | None = None, data: bytes | None = None,
                     reason: str | None = None, now: float | None = None) -> str | None:
        """A running attempt stuck past its timeout: a failed attempt (see SQLite's)."""
        at = time.time() if now is None else now
        state = self.run("charge_stuck", job_id, int(attempt), owner, failure.kind,
                         arg(failure.error_type), arg(failure.message), arg(failure.traceback),
                         arg(failure.started_at), arg(float(at)),
                         arg(None if run_at is None else float(run_at)), arg(reason), arg(data))
        return None if not state else JobState(state.decode())  # type: ignore[union-attr]

    def prune_workers(self, *, older_than: float, now: float | None = None) -> int:
        at = time.time() if now is None else now
        old = self.r.zrangebyscore(self.k("workers"), "-inf", f"({at - older_than}")
        for owner in old:
            self.r.delete(self.k("worker", owner.decode()))
            self.r.zrem(self.k("workers"), owner)
        return len(old)

    def server_time(self) -> float | None:
        seconds, micros = self.r.time()
        return seconds + micros / 1e6

    def attempt_log(self, owner: str) -> AttemptLog:
        return RunningFile(running_path(self.path, owner))

    def take_lease(self, name: str, owner: str, ttl: float, *,
                   now: float | None = None) -> bool:
        at = time.time() if now is None else now
        return bool(self.run("take_lease", name, owner, arg(float(ttl)), arg(float(at))))

    def release_lease(self, name: str, owner: str) -> None:
        self.run("release_lease", name, owner)
