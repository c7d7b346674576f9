"""Reading a jobs file for ``migrate-to``: what a copy to another backend takes, decided once.

Every backend's copy (:mod:`runner.store.postgres.transfer`,
:mod:`runner.store.redis.transfer`) reads the file through :class:`FileExport`, so
both take the same rows: live jobs, and jobs finished since ``history_since`` with
their failed attempts and results; every schedule, and the slots fired since; events
still pending or emitted since; pauses; log records written since; the lifetime
counters. Rows come in batches by rowid, each its own short read, so a copy never
holds a read snapshot of a large file open.

Jobs left ``executing`` arrive without their lease, settled as the file's own
recovery settles the jobs of a dead worker (the rule of
:func:`runner.store.recovery.settle_orphans`, applied to the rows read; the file is
not written): the copy is made with the file's workers stopped (or gone), so each
attempt was cut short. One whose attempt someone asked to cancel (``runner_cancel``)
arrives ``cancelled``: the request would otherwise be lost with the attempt it names,
and the job run again. One its worker had claimed ahead and not started (its running
file, :mod:`runner.store.sqlite.running_file`, says which) arrives ``available``
with the attempt not used. Any other was running when its worker stopped: it is
charged a crash, recorded in its history as the recovery records one (a
``WorkerDied`` attempt), and arrives ``available`` with its retries untouched, or
``dead`` once it reaches ``crash_limit`` crashes. The file never counted these
outcomes, nor the crash's failed attempt: the target counts each as the job arrives
(:attr:`FileExport.settled`, :attr:`FileExport.crashes`).

A target that pruned jobs or events it got from a copy gives, as ``jobs_after`` and
``events_after``, the rowid in the file up to which the copies before read them:
those rows are not read again, so what ran and was pruned there is not copied back
(and the target need not remember every id it was given).

huey's revocations (``r:<job id>``, ``rt:<task>`` in ``runner_kv``) are read too, so
a job or task revoked on the file is not run by the target. Locks
(``huey.lock_task``) are not: a lock held when the file's workers stopped has no
holder left to release it, and on the target it would block its task until its
TTL ran out, or forever.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from runner.store.recovery import Orphan, crash_reason, settle_orphans
from runner.store.sqlite.counters import QUEUE_ROW, TOTALS
from runner.store.sqlite.db import Database
from runner.store.sqlite.integrity import has_table
from runner.store.sqlite.running_file import read_started
from runner.store.states import LIVE_SQL, JobState
from runner.store.tables import Event, Job, JobError, Log, Pause, Schedule, ScheduleRun
from runner.store.views import BUCKETS

_BATCH = 1000


def _columns(model: type) -> list[str]:
    return [f.column_name for f in model._meta.sorted_fields]


#: The columns each read returns, in order.
JOB_COLUMNS = _columns(Job)
ERROR_COLUMNS = [c for c in _columns(JobError) if c != "id"]
RESULT_COLUMNS = ["key", "value", "expires_at"]
SCHEDULE_COLUMNS = _columns(Schedule)
RUN_COLUMNS = [c for c in _columns(ScheduleRun) if c != "id"]
EVENT_COLUMNS = _columns(Event)
PAUSE_COLUMNS = _columns(Pause)
LOG_COLUMNS = _columns(Log)
#: Lifetime counters per task and queue; ``le<i>`` are cumulative, as the file keeps them.
TOTAL_COLUMNS = tuple(dict.fromkeys((*TOTALS, "duration_sum",
                                     *(f"le{i}" for i in range(len(BUCKETS))))))

#: The columns :meth:`FileExport.revocations` returns.
REVOCATION_COLUMNS = ["key", "value"]

_AT = {column: n for n, column in enumerate(JOB_COLUMNS)}
_ID, _STATE = _AT["id"], _AT["state"]
#: The error type of a crash the file's recovery charges to a dead worker's job.
_WORKER_DIED = "WorkerDied"


def _kept(job: str) -> str:
    """The condition of a copied job, read as ``job``: live, or finished in the window."""
    return f"{job}.state IN {LIVE_SQL} OR {job}.finished_at >= ?"


def _orphan(row: Sequence) -> Orphan:
    return Orphan(row[_ID], row[_AT["lease_owner"]], row[_AT["attempt"]], row[_AT["crashes"]],
                  row[_AT["started_at"]])


@dataclass
class TransferReport:
    """Rows read from the file and rows new in the target, per part copied."""

    read: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)


def digest(value: bytes) -> str:
    """A short fingerprint of a revocation's value: what a target remembers of one it
    copied, so a copy run again brings back neither one restored there nor one it used."""
    return hashlib.blake2b(value, digest_size=8).hexdigest()


class FileExport:
    """The rows of one jobs file a copy takes (see the module docstring)."""

    def __init__(self, db: Database, *, history_since: float, crash_limit: int,
                 now: float | None = None, jobs_after: int = 0, events_after: int = 0) -> None:
        self.db = db
        self.since = history_since
        self.now = time.time() if now is None else now
        self.jobs_after, self.events_after = jobs_after, events_after
        #: The rowids in the file of the last batch read, in order.
        self.rowids: list[int] = []
        self.crash_limit = crash_limit
        #: Jobs the file has running that :meth:`jobs` settled, as the outcome the target
        #: counts as each arrives (``cancelled``, ``retried`` or ``dead``): the file never
        #: counted it.
        self.settled: dict[str, str] = {}
        #: The crash charged to a job :meth:`jobs` settled, as :data:`ERROR_COLUMNS`: its
        #: last failed attempt, which the target writes (and counts) with the job.
        self.crashes: dict[str, tuple] = {}

    def _batches(self, columns: Sequence[str], tables: str, where: str,
                 params: tuple = (), after: int = 0) -> Iterator[list[tuple]]:
        """The rows of a read past rowid ``after``, a batch at a time by rowid; ``tables``
        names the table read first ``t``."""
        selected = ", ".join(f"t.{c}" for c in columns)
        last = after
        while True:
            rows = self.db.query(f"SELECT t.rowid, {selected} FROM {tables} WHERE ({where}) "
                                 f"AND t.rowid > ? ORDER BY t.rowid LIMIT {_BATCH}",
                                 (*params, last))
            if not rows:
                return
            last = rows[-1][0]
            self.rowids = [row[0] for row in rows]
            yield [row[1:] for row in rows]

    def jobs(self) -> Iterator[list[tuple]]:
        """Live jobs and those finished since ``history_since``, as :data:`JOB_COLUMNS`;
        those the file has running settled (see the module docstring)."""
        for rows in self._batches(JOB_COLUMNS, "runner_job t", _kept("t"), (self.since,),
                                  self.jobs_after):
            yield self._settle_running(rows)

    def _settle_running(self, rows: list[tuple]) -> list[tuple]:
        running = {row[_ID]: list(row) for row in rows
                   if row[_STATE] == JobState.EXECUTING.value}
        if not running:
            return rows
        orphans = [_orphan(row) for row in running.values()]
        asked = self._cancels_asked(orphans)
        started: dict[str | None, set[tuple[str, int]] | None] = {}
        now = self.now

        def started_by(owner: str | None) -> set[tuple[str, int]] | None:
            if owner not in started:
                started[owner] = None if owner is None else read_started(self.db.path, owner)
            return started[owner]

        def change(orphan: Orphan, **values: object) -> None:
            row = running[orphan.id]
            for column, value in {"lease_owner": None, "lease_expires_at": None,
                                  **values}.items():
                row[_AT[column]] = value

        def cancel(orphan: Orphan, reason: str) -> None:
            change(orphan, state=JobState.CANCELLED.value, reason=reason, finished_at=now,
                   parked=None)
            self.settled[orphan.id] = JobState.CANCELLED.value

        def requeue_unstarted(orphan: Orphan, reason: str) -> None:
            change(orphan, state=JobState.AVAILABLE.value, attempt=orphan.attempt - 1,
                   run_at=now, started_at=None, reason=reason)

        def charge(orphan: Orphan, message: str) -> bool:
            # the fields the file's recovery writes (transitions.recovery.charge_crash)
            crashes = orphan.crashes + 1
            self.crashes[orphan.id] = (orphan.id, orphan.attempt, "crash", _WORKER_DIED,
                                       message, "", orphan.owner, orphan.started_at, now)
            if self.crash_limit and crashes >= self.crash_limit:
                first = running[orphan.id][_AT["first_failed_at"]]
                change(orphan, state=JobState.DEAD.value, crashes=crashes, finished_at=now,
                       reason=crash_reason(_WORKER_DIED, crashes, dead=True),
                       error_type=_WORKER_DIED, error_message=message,
                       first_failed_at=now if first is None else first, last_failed_at=now,
                       parked=None)
                self.settled[orphan.id] = JobState.DEAD.value
                return True
            change(orphan, state=JobState.AVAILABLE.value, crashes=crashes, run_at=now,
                   reason=crash_reason(_WORKER_DIED, crashes, dead=False))
            self.settled[orphan.id] = "retried"
            return False

        # no worker of the file runs now: every owner is dead, none is this process
        settle_orphans(orphans, None, cancelled_by=lambda orphan: asked.get(orphan.id),
                       started=started_by, cancel=cancel, requeue_unstarted=requeue_unstarted,
                       charge=charge, alive=())
        return [tuple(running[row[_ID]]) if row[_ID] in running else row for row in rows]

    def _cancels_asked(self, running: Sequence[Orphan]) -> dict[str, str]:
        """Of these running jobs, those whose current attempt someone asked to cancel:
        id -> by whom."""
        if not running or not has_table(self.db, "runner_cancel"):
            return {}
        marks = ", ".join(["(?, ?)"] * len(running))
        return dict(self.db.query(
            f"SELECT job_id, requested_by FROM runner_cancel WHERE (job_id, attempt) "
            f"IN (VALUES {marks})", tuple(v for o in running for v in (o.id, o.attempt))))

    def errors(self) -> Iterator[list[tuple]]:
        """The failed attempts of the jobs :meth:`jobs` reads, as :data:`ERROR_COLUMNS`."""
        return self._batches(ERROR_COLUMNS, "runner_job_error t JOIN runner_job j "
                             "ON j.id = t.job_id", f"({_kept('j')}) AND j.rowid > ?",
                             (self.since, self.jobs_after))

    def errors_of(self, job_ids: Sequence[str]) -> dict[str, list[tuple]]:
        """The failed attempts of ``job_ids`` (at most a batch), oldest first, by job."""
        found: dict[str, list[tuple]] = {}
        if not job_ids:
            return found
        marks = ", ".join("?" * len(job_ids))
        for row in self.db.query(f"SELECT {', '.join(ERROR_COLUMNS)} FROM runner_job_error "
                                 f"WHERE job_id IN ({marks}) ORDER BY id", tuple(job_ids)):
            found.setdefault(row[0], []).append(row)
        return found

    def results(self) -> Iterator[list[tuple]]:
        """Stored results of the jobs finished since ``history_since``."""
        return self._batches(RESULT_COLUMNS, "runner_kv t JOIN runner_job j ON j.id = t.key",
                             "j.finished_at >= ? AND j.rowid > ?", (self.since, self.jobs_after))

    def revocations(self) -> Iterator[list[tuple]]:
        """huey's revocations of jobs and tasks still in force, as :data:`REVOCATION_COLUMNS`."""
        return self._batches(REVOCATION_COLUMNS, "runner_kv t",
                             "(t.key GLOB 'r:*' OR t.key GLOB 'rt:*') "
                             "AND (t.expires_at IS NULL OR t.expires_at >= ?)", (self.now,))

    def schedules(self) -> Iterator[list[tuple]]:
        return self._batches(SCHEDULE_COLUMNS, "runner_schedule t", "1")

    def schedule_runs(self) -> Iterator[list[tuple]]:
        """Slots fired since ``history_since``."""
        return self._batches(RUN_COLUMNS, "runner_schedule_run t", "t.fired_at >= ?",
                             (self.since,))

    def events(self) -> Iterator[list[tuple]]:
        """Events still pending, and those emitted since ``history_since``."""
        return self._batches(EVENT_COLUMNS, "runner_event t",
                             "t.status = 'pending' OR t.emitted_at >= ?", (self.since,),
                             self.events_after)

    def pauses(self) -> Iterator[list[tuple]]:
        if not has_table(self.db, "runner_pause"):  # a file of a release before pauses
            return iter(())
        return self._batches(PAUSE_COLUMNS, "runner_pause t", "1")

    def logs(self, after_id: int = 0) -> Iterator[list[tuple]]:
        """Log records written since ``history_since`` with an id above ``after_id``."""
        return self._batches(LOG_COLUMNS, "runner_log t", "t.created_at >= ? AND t.id > ?",
                             (self.since, after_id))

    def totals(self) -> list[tuple]:
        """Lifetime counters: (task, queue, *:data:`TOTAL_COLUMNS`) per task and queue."""
        if not has_table(self.db, "runner_job_total"):
            return []
        return self.db.query(f"SELECT task, queue, {', '.join(TOTAL_COLUMNS)} "
                             "FROM runner_job_total WHERE task != ? ORDER BY task, queue",
                             (QUEUE_ROW,))

    def queue_totals(self) -> list[tuple]:
        """(queue, rejected, dropped): jobs full queues refused or dropped."""
        if not has_table(self.db, "runner_queue_total"):
            return []
        return self.db.query("SELECT queue, rejected, dropped FROM runner_queue_total "
                             "ORDER BY queue")
