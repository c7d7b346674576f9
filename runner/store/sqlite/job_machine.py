"""SQLite: the job state machine, each step one ``BEGIN IMMEDIATE`` over :mod:`.transitions`.

The SQLite side of :mod:`runner.store.job_machine`, a mixin of
:class:`runner.store.sqlite.SqliteStore` (its ``db`` is the
:class:`~runner.store.sqlite.db.Database`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from runner.errors import DuplicateJob, QueueFull
from runner.flow import FlowLimits
from runner.store.job_rows import Ack, Enqueued, FailureInfo, NewJob, QueueBound
from runner.store.recovery import cancelled_while_running
from runner.store.rows import ClaimResult
from runner.store.sqlite import cancels as _cancels
from runner.store.sqlite import transitions as _transitions
from runner.store.sqlite.conditions import FUTURE_WHERE
from runner.store.sqlite.counters import count_backpressure
from runner.store.sqlite.db import Database
from runner.store.sqlite.transitions import intake as _intake
from runner.store.states import FINAL, HandBack, JobState


class SqliteJobs:
    """:class:`runner.store.job_machine.JobsStore` on a SQLite file."""

    db: Database

    def enqueue(self, jobs: Sequence[NewJob], *, now: float, queue_size: int = 0,
                bounds: Mapping[str, QueueBound] | None = None) -> Enqueued:
        if len(jobs) == 1:
            # The common single enqueue: one row of the intake, in a transaction of its own,
            # when it surely fits its queue (else the enqueue below counts exactly).
            job = jobs[0]
            bound = bounds.get(job.queue) if bounds else None
            intake = _intake.insert(job, now, bound.max_size if bound is not None else queue_size)
            if intake is not None and self.db.write_one(*intake):
                return Enqueued({})
        try:
            return self.db.write(lambda conn: _transitions.enqueue(
                conn, jobs, now, queue_size=queue_size, bounds=bounds), absorb=False)
        except sqlite3.IntegrityError as exc:
            raise DuplicateJob(f"{self.db.path}: {exc}; nothing was written", by="id") from None
        except QueueFull as exc:
            bound = (bounds or {}).get(exc.queue or "")
            full = exc.queue
            if full and (bound is None or bound.on_full == "reject"):
                refused = sum(1 for j in jobs if j.queue == full)
                self.db.write(lambda conn: count_backpressure(conn, full, rejected=refused))
            raise

    def claim(self, *, now: float, owner: str, lease_seconds: float, want: int,
              busy: bool = False, queues: Sequence[str] = (), acks: Sequence[Ack] = (),
              labels: Mapping[str, tuple[str, str]] | None = None,
              limits: FlowLimits | None = None, leave_suspects: bool = False,
              ahead: bool = False) -> ClaimResult:
        def claim(conn: sqlite3.Connection) -> ClaimResult:
            if acks:
                _transitions.complete(conn, acks, labels)
            return _transitions.claim(conn, now=now, owner=owner, lease_seconds=lease_seconds,
                                     want=want, busy=busy, queues=queues, limits=limits,
                                     leave_suspects=leave_suspects, ahead=ahead)

        return self.db.write(claim)

    def complete(self, acks: Sequence[Ack],
                 labels: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.db.write(lambda conn: _transitions.complete(conn, acks, labels))

    def retry(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
              now: float, run_at: float | None, reason: str | None, data: bytes | None = None,
              results: Sequence[tuple[str, bytes]] = (), jobs: Sequence[NewJob] = (),
              acks: Sequence[Ack] = ()) -> None:
        def write(conn: sqlite3.Connection) -> None:
            if acks:
                _transitions.complete(conn, acks)
            _transitions.retry(conn, job_id, attempt, failure, worker=worker, now=now,
                               run_at=run_at, reason=reason, data=data, results=results,
                               jobs=jobs)

        self.db.write(write)

    def bury(self, job_id: str, attempt: int, failure: FailureInfo, *, worker: str | None,
             now: float, reason: str | None, results: Sequence[tuple[str, bytes]] = (),
             jobs: Sequence[NewJob] = (), acks: Sequence[Ack] = ()) -> None:
        def write(conn: sqlite3.Connection) -> None:
            if acks:
                _transitions.complete(conn, acks)
            _transitions.bury(conn, job_id, attempt, failure, worker=worker, now=now,
                              reason=reason, results=results, jobs=jobs)

        self.db.write(write)

    def cancel_attempt(self, job_id: str, attempt: int | None, *, now: float,
                       reason: str | None, results: Sequence[tuple[str, bytes]] = (),
                       unstarted: bool = False) -> None:
        def write(conn: sqlite3.Connection) -> None:
            if _transitions.cancel_attempt(conn, job_id, attempt, now=now, reason=reason,
                                           unstarted=unstarted):
                _cancels.forget_cancel(conn, job_id)
                _transitions.write_follow_ups(conn, job_id, results, (), now)

        self.db.write(write)

    def hand_back(self, job_id: str, attempt: int | None, *, now: float, reason: str | None,
                  results: Sequence[tuple[str, bytes]] = ()) -> HandBack:
        def write(conn: sqlite3.Connection) -> HandBack:
            by = _cancels.running_cancel(conn, job_id, attempt)
            if by is not None:
                # Someone asked to stop this attempt before its worker did: handed back, it
                # would run again, so the request is carried out here.
                done = HandBack.CANCELLED if _transitions.cancel_attempt(
                    conn, job_id, attempt, now=now, reason=cancelled_while_running(by)
                ) else HandBack.NOTHING
            else:
                done = HandBack.HANDED_BACK if _transitions.hand_back(
                    conn, job_id, attempt, now=now, reason=reason) else HandBack.NOTHING
            if done is not HandBack.NOTHING:
                # A handed back job's next run has the same attempt number: a request to
                # stop this one must not stop that one (as Redis drops it with any end of
                # a run).
                _cancels.forget_cancel(conn, job_id)
                _transitions.write_follow_ups(conn, job_id, results, (), now)
            return done

        return self.db.write(write)

    def release(self, job_id: str, run_at: float) -> None:
        self.db.write(lambda conn: _transitions.release(conn, job_id, run_at))

    def unclaim(self, job_ids: Sequence[str]) -> None:
        self.db.write(lambda conn: _transitions.unclaim(conn, job_ids))

    def rearm(self, job: NewJob, *, now: float, queue_size: int = 0) -> bool:
        return self.db.write(lambda conn: _transitions.rearm(conn, job, now,
                                                            queue_size=queue_size))

    def cancel_waiting(self, *, now: float, reason: str, due: bool) -> int:
        return self.db.write(lambda conn: _transitions.cancel_waiting(conn, now=now,
                                                                     reason=reason, due=due))

    def set_progress(self, job_id: str, done: float, total: float | None,
                     message: str | None) -> None:
        self.db.write(lambda conn: _transitions.set_progress(conn, job_id, done, total, message))

    def has_future_jobs(self) -> bool:
        return bool(self.db.query(
            f"SELECT 1 FROM runner_job INDEXED BY runner_job_future WHERE {FUTURE_WHERE} "
            "LIMIT 1"))

    def job_is_final(self, job_id: str) -> bool:
        state = self.job_state(job_id)
        return state is None or state in FINAL

    def job_state(self, job_id: str) -> JobState | None:
        rows = self.db.query("SELECT state FROM runner_job WHERE id=?", (job_id,))
        return JobState(rows[0][0]) if rows else None
