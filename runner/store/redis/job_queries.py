"""The CLI's reads of jobs and workers on Redis.

The SQL backends' :mod:`runner.store.job_queries`, read from the job hashes and
the kept counts (see :mod:`.job_index`).
"""

from __future__ import annotations

import itertools
import json
import time

from runner.errors import JobNotFound
from runner.store.redis.codec import NULL, integer, job_row, number, text
from runner.store.redis.job_index import JobIndex
from runner.store.rows import AttemptError, JobFilter, JobRow, QueueDepth, WorkerRow
from runner.store.states import ALL, WAITING, JobState, WorkerState


def _opt_int(value: bytes | None) -> int | None:
    return None if value is None or value == NULL else int(float(value))


class RedisQueries(JobIndex):
    """:class:`runner.store.job_queries.QueriesStore` on Redis."""

    def list_jobs(self, filters: JobFilter | None = None, *, limit: int = 100,
                  offset: int = 0) -> list[JobRow]:
        # The index walks newest first by insertion: the jobs of one instant come last
        # inserted first, as on every backend.
        rows = (row for _, row in self._rows(filters))
        return list(itertools.islice(rows, offset, offset + limit))

    def count_jobs(self, filters: JobFilter | None = None) -> int:
        return self.count_jobs_capped(filters, cap=2**62)[0]

    def job_ids(self, filters: JobFilter, *, limit: int = 100_000) -> list[str]:
        ids = []
        for _, row in self._rows(filters):
            if len(ids) >= limit:
                break
            ids.append(row.id)
        return ids

    def get_job(self, job_id: str) -> JobRow:
        fields = self.r.hgetall(self.k("job", job_id))
        if not fields:
            found = self._lookup(self.k("jobs"), job_id)
            fields = self.r.hgetall(self.k("job", found)) if found else {}
        if not fields:
            raise JobNotFound(f"no job with id '{job_id}'")
        return job_row(fields)

    def job_errors(self, job_id: str) -> list[AttemptError]:
        return [AttemptError(*json.loads(r)[1:]) for r in
                self.r.lrange(self.k("errors", job_id), 0, -1)]

    def counts_by_state(self) -> dict[str, int]:
        self._settle()
        pipe = self.r.pipeline(transaction=False)
        for s in ALL:
            pipe.zcard(self.k("state", s.value))
        return {s.value: int(n) for s, n in zip(ALL, pipe.execute(), strict=True)}

    def queue_depths(self, now: float | None = None) -> list[QueueDepth]:
        at = time.time() if now is None else now
        waiting_states = {s.value for s in WAITING}
        per: dict[str, list[int]] = {}
        for (q, s), n in self._qstate().items():
            if s in waiting_states:
                per.setdefault(q, [0, 0])[0] += n
            elif s == JobState.EXECUTING.value:
                per.setdefault(q, [0, 0])[1] += n
        oldest = dict(self.queue_oldest(at))
        return [QueueDepth(q, w, r, None if oldest.get(q) is None
                           else max(0.0, at - oldest[q]))  # type: ignore[operator]
                for q, (w, r) in sorted(per.items())]

    def stored_result(self, job_id: str) -> bytes | None:
        return self.r.hget(self.k("kv"), job_id)

    def job_payload(self, job_id: str) -> bytes | None:
        return self.r.get(self.k("data", job_id))

    def list_workers(self, *, include_stopped: bool = False) -> list[WorkerRow]:
        owners = self.r.zrevrange(self.k("workers"), 0, -1)
        pipe = self.r.pipeline(transaction=False)
        for owner in owners:
            pipe.hgetall(self.k("worker", owner.decode()))
        rows = []
        for h in pipe.execute():
            if not h:
                continue
            state = text(h.get(b"state")) or ""
            if not include_stopped and state != WorkerState.RUNNING.value:
                continue
            rows.append(WorkerRow(
                id=text(h[b"id"]) or "", host=text(h.get(b"host")) or "",
                pid=integer(h.get(b"pid")), started_at=number(h.get(b"started_at")) or 0.0,
                heartbeat_at=number(h.get(b"heartbeat_at")) or 0.0,
                stopped_at=number(h.get(b"stopped_at")), state=state,
                concurrency=integer(h.get(b"concurrency")), queues=text(h.get(b"queues")),
                rss_bytes=_opt_int(h.get(b"rss_bytes")),
                cpu_percent=number(h.get(b"cpu_percent")), running=integer(h.get(b"running")),
                processed=integer(h.get(b"processed")), status=text(h.get(b"status")),
                clock_offset=number(h.get(b"clock_offset"))))
        return rows
