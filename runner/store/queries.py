"""Read side of the jobs database, shared by the CLI, metrics and the dashboard.

Every function fetches all its rows before returning, so no cursor (and no
snapshot) outlives the call: a held read snapshot keeps SQLite from
checkpointing and grows the WAL without bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from runner.errors import JobNotFound
from runner.store.db import AmbiguousId, Database, contains_pattern, lookup_id
from runner.store.models import JOB_COLUMNS, WAITING_SQL, AttemptError, JobRow


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a listing shows; every field narrows it."""

    state: str | None = None
    queue: str | None = None
    task: str | None = None
    text: str | None = None
    event_id: str | None = None
    worker: str | None = None
    """Jobs a worker is running now (its lease)."""

    def where(self) -> tuple[str, list[object]]:
        """The SQL condition and its parameters."""
        clauses, params = [], []
        if self.state:
            if self.state == "waiting":
                clauses.append(f"state IN {WAITING_SQL}")
            elif self.state == "failed":
                clauses.append("state IN ('retrying','dead')")
            else:
                clauses.append("state = ?")
                params.append(self.state)
        if self.queue:
            clauses.append("queue = ?")
            params.append(self.queue)
        if self.task:
            clauses.append("task = ?")
            params.append(self.task)
        if self.event_id:
            clauses.append("event_id = ?")
            params.append(self.event_id)
        if self.worker:
            clauses.append("lease_owner = ?")
            params.append(self.worker)
        if self.text:
            like = contains_pattern(self.text)
            clauses.append("(id LIKE ? ESCAPE '\\' OR task LIKE ? ESCAPE '\\' OR "
                           "args LIKE ? ESCAPE '\\' OR error_message LIKE ? ESCAPE '\\')")
            params.extend([like] * 4)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_jobs(db: Database, filters: JobFilter | None = None, *, limit: int = 100,
              offset: int = 0) -> list[JobRow]:
    """Jobs matching ``filters``, newest first, one page at a time."""
    where, params = (filters or JobFilter()).where()
    rows = db.query(f"SELECT {JOB_COLUMNS} FROM runner_job{where} "
                    f"ORDER BY created_at DESC, id LIMIT ? OFFSET ?", [*params, limit, offset])
    return [JobRow(*row) for row in rows]


def count_jobs(db: Database, filters: JobFilter | None = None) -> int:
    """How many jobs match ``filters``."""
    where, params = (filters or JobFilter()).where()
    return db.query(f"SELECT count(*) FROM runner_job{where}", params)[0][0]


def job_ids(db: Database, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
    """Ids of the jobs matching ``filters`` (for bulk actions)."""
    where, params = filters.where()
    return [r[0] for r in db.query(f"SELECT id FROM runner_job{where} LIMIT ?",
                                   [*params, limit])]


def get_job(db: Database, job_id: str) -> JobRow:
    """One job by id, or by a unique start or end of its id.

    Raises:
        JobNotFound: no job, or the prefix is ambiguous.
    """
    try:
        row = lookup_id(db, "runner_job", JOB_COLUMNS, job_id)
    except AmbiguousId:
        raise JobNotFound(f"job id '{job_id}' is ambiguous; give more of it") from None
    if row is None:
        raise JobNotFound(f"no job with id '{job_id}'")
    return JobRow(*row)


def job_errors(db: Database, job_id: str) -> list[AttemptError]:
    """Every failed attempt of a job, oldest first (the timeline)."""
    rows = db.query(
        "SELECT attempt, kind, error_type, message, traceback, worker, started_at, failed_at "
        "FROM runner_job_error WHERE job_id = ? ORDER BY id", (job_id,))
    return [AttemptError(*row) for row in rows]


def counts_by_state(db: Database) -> dict[str, int]:
    """Number of jobs in each state (states with none are 0)."""
    counts = dict.fromkeys(("available", "scheduled", "executing", "retrying", "completed",
                            "dead", "cancelled"), 0)
    counts.update(dict(db.query("SELECT state, count(*) FROM runner_job GROUP BY state")))
    return counts


@dataclass(frozen=True)
class QueueDepth:
    """One queue's backlog."""

    queue: str
    waiting: int
    running: int
    oldest_waiting_age: float | None


def queue_depths(db: Database, now: float | None = None) -> list[QueueDepth]:
    """Waiting and running jobs per queue, with the age of the oldest due waiting job."""
    at = time.time() if now is None else now
    rows = db.query(
        f"SELECT queue, sum(state IN {WAITING_SQL}), sum(state = 'executing'), "
        f"min(CASE WHEN state IN {WAITING_SQL} AND run_at <= ? THEN run_at END) "
        f"FROM runner_job WHERE state IN {WAITING_SQL[:-1]},'executing') GROUP BY queue "
        f"ORDER BY queue", (at,))
    return [QueueDepth(q, int(w or 0), int(r or 0), None if o is None else max(0.0, at - o))
            for q, w, r, o in rows]


@dataclass(frozen=True)
class WorkerRow:
    """A worker process as recorded by its heartbeats."""

    id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    state: str
    concurrency: int
    queues: str | None
    rss_bytes: int | None
    cpu_percent: float | None
    running: int
    processed: int
    status: str | None


def list_workers(db: Database, *, include_stopped: bool = False) -> list[WorkerRow]:
    """Worker processes, most recent heartbeat first."""
    where = "" if include_stopped else " WHERE state = 'running'"
    rows = db.query(f"SELECT {', '.join(WorkerRow.__dataclass_fields__)} FROM runner_worker"
                    f"{where} ORDER BY heartbeat_at DESC")
    return [WorkerRow(*row) for row in rows]
