"""The job state machine on Redis: enqueue, claim under a lease, outcomes, by hand.

Each operation is one Lua script (:mod:`runner.store.redis.scripts`), so it is
atomic as a SQLite transaction is; the acks a claim carries are written by the
same script that claims.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import redis

from runner.errors import DuplicateJob
from runner.flow import FlowLimits
from runner.store.job_rows import Ack, Claimed, Enqueued, FailureInfo, NewJob, QueueBound
from runner.store.redis.codec import (
    Arg,
    acks_args,
    arg,
    decoded,
    job_args,
    jobs_args,
    pairs_args,
    token,
)
from runner.store.redis.connection import RedisBase
from runner.store.redis.quick import push_request, quick, wake_request
from runner.store.rows import ClaimResult
from runner.store.states import FINAL, FUTURE, HandBack, JobState


def limits_arg(limits: FlowLimits | None) -> str:
    """The limits of a claim as the claim function reads them (JSON; empty: plain order)."""
    if limits is None or limits.plain:
        return ""
    rates = {"qr": limits.queue_rates, "tr": limits.task_rates}
    return json.dumps({
        "aging": float(limits.aging), "weights": dict(limits.weights),
        "qc": dict(limits.queue_concurrency), "tc": dict(limits.task_concurrency),
        "kc": dict(limits.key_concurrency),
        **{k: {n: [r.per_second, int(r.burst)] for n, r in v.items()}
           for k, v in rates.items()}})


#: What the ``hand_back`` script returns, as the seam says it.
_HAND_BACK = {0: HandBack.NOTHING, 1: HandBack.HANDED_BACK, 2: HandBack.CANCELLED}


class JobMachine(RedisBase):
    """Writes that move jobs between states."""

    def push(self, job: NewJob, now: float) -> bool:
        """The quick enqueue of ``job`` (see :mod:`.quick`): False if it did not happen.

        On this thread's own connection; whatever goes wrong, the caller takes the
        scripted enqueue, which checks everything (an id already written included).
        The push that finds the inbox empty publishes the wake-up; the others leave
        it to the workers already woken (a lost wake-up costs a poll, as ever).
        """
        prefix = self.p.encode()
        try:
            [length] = self.send_raw(push_request(prefix, job, now), 1)
        except redis.RedisError:
            return False
        if length.__class__ is not int:
            return False
        if length == 1:
            try:
                self.send_raw(wake_request(prefix), 1)
            except redis.RedisError:
                return True  # written; ``wakeup`` publishes by the client instead
        self._published.woke = True  # published, or no wake-up is needed
        return True

    def enqueue(self, jobs: Sequence[NewJob], *, now: float, queue_size: int = 0,
                bounds: Mapping[str, QueueBound] | None = None) -> Enqueued:
        if not jobs:
            return Enqueued({})
        if (len(jobs) == 1 and not queue_size and quick(jobs[0], now)
                and not any(b.max_size for b in (bounds or {}).values())):
            if self.push(jobs[0], now):
                return Enqueued({})
            try:
                return self._scripted(jobs, now, 0, None)
            except DuplicateJob as exc:
                if exc.by != "id":
                    raise
                # No job had this fresh id: the push did land, and only its reply was lost.
                return Enqueued({})
        return self._scripted(jobs, now, queue_size, bounds)

    def _scripted(self, jobs: Sequence[NewJob], now: float, queue_size: int,
                  bounds: Mapping[str, QueueBound] | None) -> Enqueued:
        limits: list[Arg] = [0]
        for queue, bound in (bounds or {}).items():
            if bound.max_size or queue_size:  # an unbounded queue under no queue_size: no bound
                limits += [queue, int(bound.max_size), bound.on_full]
        limits[0] = (len(limits) - 1) // 3
        reply = self.run("enqueue", repr(float(now)), int(queue_size), *limits,
                         *jobs_args(jobs), token())
        if isinstance(reply, int):  # nothing refused or dropped
            if reply:
                self._published.woke = True  # the function published the wake-up already
            return Enqueued({})
        woke, dups, dropped = reply  # type: ignore[misc]
        if woke:
            self._published.woke = True
        pairs = decoded(dups)
        return Enqueued(dict(zip(pairs[::2], pairs[1::2], strict=True)),
                        tuple(decoded(dropped)))

    def claim(self, *, now: float, owner: str, lease_seconds: float, want: int,
              busy: bool = False, queues: Sequence[str] = (), acks: Sequence[Ack] = (),
              labels: Mapping[str, tuple[str, str]] | None = None,
              limits: FlowLimits | None = None, leave_suspects: bool = False,
              ahead: bool = False) -> ClaimResult:
        # ``ahead`` is not used: the Lua claim shares queues pick by pick always.
        claimed, next_due, suspect, revoked, full = self.run(  # type: ignore[misc]
            "claim", arg(float(now)), owner, arg(float(lease_seconds)), int(want),
            "leave" if leave_suspects else arg(bool(busy)), limits_arg(limits), len(queues),
            *queues, *acks_args(acks), token())
        jobs = [Claimed(c[0].decode(), c[1], int(c[2]), now) for c in claimed]
        return ClaimResult(jobs, float(next_due) if next_due else None, bool(suspect),
                           bool(revoked),
                           {c[0].decode(): (c[3].decode(), c[4].decode()) for c in claimed},
                           frozenset(decoded(full)))

    def complete(self, acks: Sequence[Ack],
                 labels: Mapping[str, tuple[str, str]] | None = None) -> None:
        if acks:
            self.run("complete", *acks_args(acks))

    def _fail(self, state: str, job_id: str, attempt: int, failure: FailureInfo, *,
              worker: str | None, now: float, run_at: float | None, reason: str | None,
              data: bytes | None, results: Sequence[tuple[str, bytes]],
              jobs: Sequence[NewJob], acks: Sequence[Ack]) -> None:
        self.run("fail", state, job_id, int(attempt), failure.kind, arg(failure.error_type),
                 arg(failure.message), arg(failure.traceback), arg(failure.started_at),
                 arg(worker), arg(float(now)), arg(None if run_at is None else float(run_at)),
                 arg(reason), arg(data), *pairs_args(results), *jobs_args(jobs),
                 *acks_args(acks), token())

    def retry(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
              now: float, run_at: float | None, reason: str | None, data: bytes | None = None,
              results: Sequence[tuple[str, bytes]] = (), jobs: Sequence[NewJob] = (),
              acks: Sequence[Ack] = ()) -> None:
        self._fail(JobState.RETRYING.value, job_id, attempt, failure, worker=worker, now=now,
                   run_at=run_at, reason=reason, data=data, results=results, jobs=jobs, acks=acks)

    def bury(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
             now: float, reason: str | None, results: Sequence[tuple[str, bytes]] = (),
             jobs: Sequence[NewJob] = (), acks: Sequence[Ack] = ()) -> None:
        self._fail(JobState.DEAD.value, job_id, attempt, failure, worker=worker, now=now,
                   run_at=None, reason=reason, data=None, results=results, jobs=jobs, acks=acks)

    def cancel_attempt(self, job_id: str, attempt: int | None, *, now: float,
                       reason: str | None, results: Sequence[tuple[str, bytes]] = (),
                       unstarted: bool = False) -> None:
        self.run("cancel_attempt", job_id, arg(attempt), arg(float(now)), arg(reason),
                 arg(bool(unstarted)), *pairs_args(results))

    def hand_back(self, job_id: str, attempt: int | None, *, now: float, reason: str | None,
                  results: Sequence[tuple[str, bytes]] = ()) -> HandBack:
        return _HAND_BACK[int(self.run("hand_back", job_id, arg(attempt), arg(float(now)),
                                       arg(reason), *pairs_args(results)))]

    def release(self, job_id: str, run_at: float) -> None:
        self.run("release", job_id, arg(float(run_at)))

    def unclaim(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self.run("unclaim", *job_ids)

    def rearm(self, job: NewJob, *, now: float, queue_size: int = 0) -> bool:
        return bool(self.run("rearm", arg(float(now)), int(queue_size), *job_args(job)))

    def cancel_waiting(self, *, now: float, reason: str, due: bool) -> int:
        return int(self.run("cancel_waiting", arg(float(now)), reason, arg(bool(due))))

    def set_progress(self, job_id: str, done: float, total: float | None,
                     message: str | None) -> None:
        self.run("set_progress", job_id, arg(float(done)),
                 arg(None if total is None else float(total)), arg(message))

    def has_future_jobs(self) -> bool:
        pipe = self.r.pipeline(transaction=False)
        for state in FUTURE:
            pipe.zcard(self.k("state", state.value))
        return any(pipe.execute())

    def job_is_final(self, job_id: str) -> bool:
        state = self.job_state(job_id)
        return state is None or state in FINAL

    def job_state(self, job_id: str) -> JobState | None:
        state = self.r.hget(self.k("job", job_id), "state")
        if state is None:  # not written yet, or still an entry of the inbox
            self._settle()
            state = self.r.hget(self.k("job", job_id), "state")
        return None if state is None else JobState(state.decode())
