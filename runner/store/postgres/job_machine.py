"""PostgreSQL: the job state machine: enqueue, claim, ack, retry, bury and the rest.

Mixed into :class:`runner.store.postgres.PostgresStore` for :mod:`runner.store.job_machine`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from psycopg import errors as pg_errors

from runner.errors import DuplicateJob, QueueFull
from runner.flow import FlowLimits
from runner.store.job_rows import Ack, Enqueued, FailureInfo, NewJob, QueueBound
from runner.store.postgres import counting as _counting
from runner.store.postgres import transitions as _transitions
from runner.store.postgres.connection import PgDatabase
from runner.store.postgres.flow_control import forget_cancel, running_cancel
from runner.store.postgres.job_queries import has_future_jobs, job_state
from runner.store.postgres.wakeup import notify_soon
from runner.store.recovery import cancelled_while_running
from runner.store.rows import ClaimResult
from runner.store.states import FINAL, HandBack, JobState


class PostgresJobs:
    """:class:`runner.store.job_machine.JobsStore` on a PostgreSQL database."""

    db: PgDatabase
    _notified: float

    def enqueue(self, jobs: Sequence[NewJob], *, now: float, queue_size: int = 0,
                bounds: Mapping[str, QueueBound] | None = None) -> Enqueued:
        sizes, drops = _queue_sizes(jobs, queue_size, bounds)
        keyed = any(j.unique_key is not None for j in jobs)
        try:
            # Unbounded and unkeyed, the enqueue is one statement: it commits by itself.
            result = self.db.write(
                lambda conn: _transitions.enqueue_new(conn, jobs, now, sizes=sizes,
                                                      drops=drops),
                single=not sizes and not keyed and not drops)
            notify_soon(self.db)  # after the commit, by a thread (see wakeup.Notifier)
            self._notified = time.monotonic()
            return result
        except pg_errors.UniqueViolation as exc:
            by = "id" if exc.diag.constraint_name == "runner_job_pkey" else "unique_key"
            raise DuplicateJob(f"{self.db.display}: {exc.diag.message_detail or exc}; "
                               "nothing was written", by=by) from None
        except QueueFull as exc:
            full = exc.queue
            bound = (bounds or {}).get(full or "")
            if full and (bound is None or bound.on_full == "reject"):
                refused = sum(1 for j in jobs if j.queue == full)
                self.db.write(lambda conn: _counting.count_backpressure(conn, full,
                                                                       rejected=refused))
            raise

    def claim(self, *, now: float, owner: str, lease_seconds: float, want: int,
              busy: bool = False, queues: Sequence[str] = (), acks: Sequence[Ack] = (),
              labels: Mapping[str, tuple[str, str]] | None = None,
              limits: FlowLimits | None = None, leave_suspects: bool = False,
              ahead: bool = False) -> ClaimResult:
        # ``ahead`` is not used: PostgreSQL's claim shares queues pick by pick always.
        channel = self.db.channel
        epoch = self.db.revocation_epoch()
        if _transitions.claims_at_once(acks, limits):
            done = self.db.write(lambda conn: _transitions.claim_at_once(
                conn, now=now, owner=owner, lease_seconds=lease_seconds, want=want,
                queues=queues, acks=acks, limits=limits), single=True)
            if done is not None:
                self.db.claim_found_revocations(epoch, done.revocations)
                return done
            acks = ()  # written; the full claim below decides what to take

        def claim(conn) -> ClaimResult:  # noqa: ANN001 - a psycopg connection
            _transitions.complete(conn, acks, channel)
            return _transitions.claim(conn, now=now, owner=owner, lease_seconds=lease_seconds,
                                      want=want, busy=busy, queues=queues, limits=limits,
                                      leave_suspects=leave_suspects)

        return self.db.write(claim)

    def complete(self, acks: Sequence[Ack],
                 labels: Mapping[str, tuple[str, str]] | None = None) -> None:
        channel = self.db.channel
        self.db.write(lambda conn: _transitions.complete(conn, acks, channel))

    def retry(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
              now: float, run_at: float | None, reason: str | None, data: bytes | None = None,
              results: Sequence[tuple[str, bytes]] = (), jobs: Sequence[NewJob] = (),
              acks: Sequence[Ack] = ()) -> None:
        channel = self.db.channel

        def write(conn) -> None:  # noqa: ANN001 - a psycopg connection
            _transitions.complete(conn, acks, channel)
            if _transitions.fail(conn, job_id, attempt, failure, JobState.RETRYING,
                                 worker=worker, now=now, run_at=run_at, reason=reason, data=data):
                _transitions.write_follow_ups(conn, job_id, results, jobs, now, channel)

        self.db.write(write)

    def bury(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
             now: float, reason: str | None, results: Sequence[tuple[str, bytes]] = (),
             jobs: Sequence[NewJob] = (), acks: Sequence[Ack] = ()) -> None:
        channel = self.db.channel

        def write(conn) -> None:  # noqa: ANN001 - a psycopg connection
            _transitions.complete(conn, acks, channel)
            if _transitions.fail(conn, job_id, attempt, failure, JobState.DEAD, worker=worker,
                                 now=now, run_at=None, reason=reason, data=None):
                _transitions.write_follow_ups(conn, job_id, results, jobs, now, channel)

        self.db.write(write)

    def cancel_attempt(self, job_id: str, attempt: int | None, *, now: float,
                       reason: str | None, results: Sequence[tuple[str, bytes]] = (),
                       unstarted: bool = False) -> None:
        def write(conn) -> None:  # noqa: ANN001 - a psycopg connection
            if _transitions.cancel_attempt(conn, job_id, attempt, now=now, reason=reason,
                                           unstarted=unstarted):
                forget_cancel(conn, job_id)
                _transitions.write_follow_ups(conn, job_id, results, (), now)

        self.db.write(write)

    def hand_back(self, job_id: str, attempt: int | None, *, now: float, reason: str | None,
                  results: Sequence[tuple[str, bytes]] = ()) -> HandBack:
        channel = self.db.channel

        def write(conn) -> HandBack:  # noqa: ANN001 - a psycopg connection
            by = running_cancel(conn, job_id, attempt)
            if by is not None:
                # Asked to stop before its worker did: handed back, it would run again.
                if not _transitions.cancel_attempt(conn, job_id, attempt, now=now,
                                                   reason=cancelled_while_running(by)):
                    return HandBack.NOTHING
                forget_cancel(conn, job_id)
                _transitions.write_follow_ups(conn, job_id, results, (), now)
                return HandBack.CANCELLED
            if not _transitions.hand_back(conn, job_id, attempt, now=now, reason=reason):
                return HandBack.NOTHING
            forget_cancel(conn, job_id)  # its next run has the same attempt number
            _transitions.write_follow_ups(conn, job_id, results, (), now)
            _transitions.notify(conn, channel)
            return HandBack.HANDED_BACK

        return self.db.write(write)

    def release(self, job_id: str, run_at: float) -> None:
        self.db.write(lambda conn: _transitions.release(conn, job_id, run_at))

    def unclaim(self, job_ids: Sequence[str]) -> None:
        channel = self.db.channel

        def write(conn) -> None:  # noqa: ANN001 - a psycopg connection
            _transitions.unclaim(conn, job_ids)
            _transitions.notify(conn, channel)

        self.db.write(write)

    def rearm(self, job: NewJob, *, now: float, queue_size: int = 0) -> bool:
        channel = self.db.channel

        def write(conn) -> bool:  # noqa: ANN001 - a psycopg connection
            if not _transitions.rearm(conn, job, now, queue_size=queue_size):
                return False
            _transitions.notify(conn, channel)
            return True

        return self.db.write(write)

    def cancel_waiting(self, *, now: float, reason: str, due: bool) -> int:
        return self.db.write(lambda conn: _transitions.cancel_waiting(conn, now=now,
                                                                      reason=reason, due=due))

    def set_progress(self, job_id: str, done: float, total: float | None,
                     message: str | None) -> None:
        self.db.write(lambda conn: _transitions.set_progress(conn, job_id, done, total, message))

    def has_future_jobs(self) -> bool:
        return has_future_jobs(self.db)

    def job_is_final(self, job_id: str) -> bool:
        state = job_state(self.db, job_id)
        return state is None or state in FINAL

    def job_state(self, job_id: str) -> JobState | None:
        state = job_state(self.db, job_id)
        return None if state is None else JobState(state)


def _queue_sizes(jobs: Sequence[NewJob], queue_size: int,
                 bounds: Mapping[str, QueueBound] | None
                 ) -> tuple[dict[str, int], dict[str, QueueBound]]:
    """The waiting-job bound of each queue of ``jobs`` that refuses when full, and the
    bound of each that drops its oldest jobs instead (queues without one left out)."""
    sizes: dict[str, int] = {}
    drops: dict[str, QueueBound] = {}
    for queue in {j.queue for j in jobs}:
        bound = (bounds or {}).get(queue)
        size = bound.max_size if bound is not None else queue_size
        if not size:
            continue
        if bound is not None and bound.on_full == "drop_oldest":
            drops[queue] = bound
        else:
            sizes[queue] = size
    return sizes, drops
