"""The dashboard's panels and the metrics scrape on Redis, read from the kept counts and sets.

Pages of jobs are keyset pages in insertion order (the rowid, which is
creation order here): a page is a range of the ``jobs`` or ``state:<s>`` set
from the key on. The ranked sorts (duration, attempts) rank the newest
:data:`~runner.store.views.SORT_WINDOW` matches. Lifetime totals per task and
queue are the ``totals`` hash the scripts add to (see
:mod:`runner.store.redis.lua_jobs`).
"""

from __future__ import annotations

import time

from runner.store.redis.codec import US, decoded, integer, number, text
from runner.store.redis.events import Events
from runner.store.rows import JobFilter, JobRow
from runner.store.states import JobState, WorkerState
from runner.store.views import (
    BUCKETS,
    JOB_SORTS,
    RECENT_SAMPLE,
    SORT_WINDOW,
    DatabaseSnapshot,
    JobPage,
    PageKey,
    QueueGauges,
    QueueLoad,
    RunningJob,
    RunTimes,
    Summary,
    TaskTotals,
    WorkerLoad,
    percentile,
)


class Panels(Events):
    """Summary, throughput, loads, pages and the scrape snapshot."""

    def summary(self, now: float | None = None,
                rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None, *,
                done_last_minute: int | None = None, stale_after: float = 15.0) -> Summary:
        at = time.time() if now is None else now
        counts = self.counts_by_state()
        executing = counts[JobState.EXECUTING.value]
        stalled = self.stalled_count(at, stale_after) if executing else 0
        oldest = min((o for _, o in self.queue_oldest(at) if o is not None), default=None)
        completed, failed = rates if rates is not None else self.throughput(at, minutes=60)
        done, errors = sum(completed), sum(failed)
        if done_last_minute is None:
            done_last_minute = int(self.r.zcount(self.k("fin", JobState.COMPLETED.value),
                                                 f"({at - 60}", "+inf"))
        return Summary(
            at=at, waiting=counts[JobState.AVAILABLE.value], running=executing - stalled,
            scheduled=counts[JobState.SCHEDULED.value],
            retrying=counts[JobState.RETRYING.value], dead=counts[JobState.DEAD.value],
            completed_per_minute=float(done_last_minute),
            error_rate=errors / (done + errors) if done + errors else None,
            oldest_waiting_age=None if oldest is None else max(0.0, at - oldest),
            stalled=stalled)

    def live_worker_ids(self, now: float, stale_after: float) -> frozenset[str]:
        owners = decoded(self.r.zrangebyscore(self.k("workers"), now - stale_after, "+inf"))
        states = self._worker_states(owners)
        return frozenset(o for o, s in zip(owners, states, strict=True)
                         if s == WorkerState.RUNNING.value)

    def stalled_count(self, now: float, stale_after: float) -> int:
        live = self.live_worker_ids(now, stale_after)
        ids = decoded(self.r.zrange(self.k("state", JobState.EXECUTING.value), 0, -1))
        return sum(1 for owner, expires in self._fields(ids, "lease_owner", "lease_expires_at")
                   if owner is None or text(owner) not in live or (number(expires) or 0) < now)

    def throughput(self, now: float | None = None, *,
                   minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
        at = time.time() if now is None else now
        end = (int(at) // 60 + 1) * 60
        start = end - minutes * 60
        completed, failed = [0] * minutes, [0] * minutes
        for _, finished in self._finished(start):
            index = int((finished - start) // 60)
            if 0 <= index < minutes:
                completed[index] += 1
        for _, failed_at in self._failures(start):
            index = int((failed_at - start) // 60)
            if 0 <= index < minutes:
                failed[index] += 1
        return tuple(completed), tuple(failed)

    def queue_loads(self, now: float | None = None) -> list[QueueLoad]:
        at = time.time() if now is None else now
        return [QueueLoad(d.queue, d.waiting, d.running, d.oldest_waiting_age)
                for d in self.queue_depths(at)]

    def recent_run_times(self, now: float | None = None, *, sample: int = RECENT_SAMPLE
                         ) -> tuple[RunTimes, dict[str, RunTimes]]:
        at = time.time() if now is None else now
        newest = [(m.decode(), s) for m, s in self.r.zrevrange(
            self.k("fin", JobState.COMPLETED.value), 0, sample - 1, withscores=True)]
        fields = self._fields([i for i, _ in newest], "queue", "started_at")
        rows = [(text(q) or "", finished, None if number(s) is None else finished - number(s))
                for (_, finished), (q, s) in zip(newest, fields, strict=True)]
        since = at - 60
        span = at - rows[-1][1] if len(rows) >= sample and rows[-1][1] > since else 60.0
        scale = 60.0 / max(span, 1.0)

        def stats(picked: list[tuple[str, float, float | None]]) -> RunTimes:
            took = [d for _, _, d in picked if d is not None and d >= 0]
            recent = sum(1 for _, finished, _ in picked if finished >= since)
            return RunTimes(percentile(took, 0.50), percentile(took, 0.95), recent * scale,
                            len(picked))

        by_queue: dict[str, list[tuple[str, float, float | None]]] = {}
        for row in rows:
            by_queue.setdefault(row[0], []).append(row)
        return stats(rows), {queue: stats(picked) for queue, picked in by_queue.items()}

    def worker_loads(self, *, include_stopped: bool = False) -> list[WorkerLoad]:
        by_owner: dict[str, list[RunningJob]] = {}
        for owner, job_id, task, started in self.running_jobs():
            by_owner.setdefault(owner or "", []).append(RunningJob(job_id, task, started))
        return [WorkerLoad(w, by_owner.get(w.id, []))
                for w in self.list_workers(include_stopped=include_stopped)]

    # -- pages of jobs -----------------------------------------------------------------------

    def keyset_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                    after: PageKey | None = None, oldest_first: bool = False,
                    sort: str = "newest", now: float | None = None) -> JobPage:
        if sort not in JOB_SORTS:
            raise ValueError(f"unknown sort {sort!r}: choose one of {', '.join(JOB_SORTS)}")
        if sort in ("duration", "attempts"):
            return self._ranked_page(filters, limit=limit, after=after, sort=sort, now=now)
        oldest_first = oldest_first or sort == "oldest"
        found: list[tuple[int, JobRow]] = []
        for rowid, row in self._rows(filters, newest_first=not oldest_first):
            if after is not None and (rowid <= after.rowid if oldest_first
                                      else rowid >= after.rowid):
                continue
            found.append((rowid, row))
            if len(found) > limit:
                break
        jobs = [row for _, row in found[:limit]]
        if len(found) <= limit:
            return JobPage(jobs, None)
        rowid, last = found[limit - 1]
        return JobPage(jobs, PageKey(last.created_at, rowid))

    def _ranked_page(self, filters: JobFilter | None, *, limit: int, after: PageKey | None,
                     sort: str, now: float | None) -> JobPage:
        at = time.time() if now is None else now
        window: list[tuple[int, JobRow]] = []
        for pair in self._rows(filters):
            window.append(pair)
            if len(window) >= SORT_WINDOW:
                break

        def rank(row: JobRow) -> float | None:
            if sort == "attempts":
                return float(row.attempt)
            if row.state == JobState.EXECUTING and row.started_at is not None:
                return at - row.started_at
            return row.duration

        ranked = sorted(window, key=lambda p: (rank(p[1]) is None, -(rank(p[1]) or 0.0),
                                               -p[0]))
        offset = after.rowid if after is not None else 0
        page = ranked[offset:offset + limit + 1]
        more = len(page) > limit
        return JobPage([row for _, row in page[:limit]],
                       PageKey(0.0, offset + limit) if more else None)

    def page_key_at(self, at: float, filters: JobFilter | None = None, *,
                    oldest_first: bool = False) -> PageKey:
        key = self.k("jobs")
        low, high = 0, int(self.r.zcard(key)) - 1
        if high < 0:
            return PageKey(at, 0)
        found = 0  # the last rowid created at or before ``at``
        while low <= high:
            middle = (low + high) // 2
            [(member, rowid)] = self.r.zrange(key, middle, middle, withscores=True)
            created = number(self.r.hget(self.k("job", member.decode()), "created_at"))
            if created is None or created > at:
                high = middle - 1
            else:
                found = max(found, int(rowid))
                low = middle + 1
        return PageKey(at, found + 1 if not oldest_first else found)

    # -- the metrics scrape --------------------------------------------------------------

    def read_snapshot(self, *, now: float | None = None,
                      heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
        at = time.time() if now is None else now
        running = self.running_per_queue()
        totals = self.read_totals()
        queues = []
        for queue in sorted(set(self.waiting_queues()) | set(running)
                            | {t.queue for t in totals}):
            key = self.k("waitall", queue)
            due = int(self.r.zcount(key, "-inf", at))
            later = int(self.r.zcount(key, f"({at}", "+inf"))
            first = self.r.zrange(key, 0, 0, withscores=True)
            age = max(0.0, at - first[0][1]) if first and first[0][1] <= at else 0.0
            queues.append(QueueGauges(queue, due, later, int(running.get(queue, 0)), age))
        dead = self.count_in_state(JobState.DEAD)
        workers = len(self.live_worker_ids(at, heartbeat_limit))
        lags = {name: max(0.0, at - t) if t is not None else 0.0
                for name, t in self.active_schedule_fires()}
        paused = {p.name: p.paused for p in self.list_pauses() if p.kind == "queue"}
        return DatabaseSnapshot(at, totals, queues, dead, workers, lags,
                                self.backpressure_totals(), paused)

    def read_totals(self) -> list[TaskTotals]:
        """Every (task, queue)'s lifetime counters: one read of a hash as small as the tasks."""
        per: dict[tuple[str, str], dict[str, bytes]] = {}
        for field, value in self.r.hgetall(self.k("totals")).items():
            task, queue, what = field.decode().split(US)
            per.setdefault((task, queue), {})[what] = value
        out = []
        for (task, queue), v in sorted(per.items()):
            counts = [integer(v.get(f"b{i}")) for i in range(len(BUCKETS) + 1)]
            cumulative, running = [], 0
            for n in counts[:-1]:
                running += n
                cumulative.append(running)
            out.append(TaskTotals(
                task, queue, integer(v.get("enqueued")), sum(counts),
                integer(v.get("failed")), integer(v.get("retried")),
                integer(v.get(JobState.DEAD.value)), integer(v.get(JobState.CANCELLED.value)),
                number(v.get("duration")) or 0.0, tuple(cumulative)))
        return out

    def waiting_queues(self) -> list[str]:
        return sorted(q for q in decoded(self.r.smembers(self.k("queues")))
                      if self.r.zcard(self.k("waitall", q)))

    def waiting_size(self, *, now: float, due: bool) -> int:
        low, high = ("-inf", now) if due else (f"({now}", "+inf")
        return sum(int(self.r.zcount(self.k("waitall", q), low, high))
                   for q in self.waiting_queues())

    def waiting_payloads(self, *, now: float, due: bool, limit: int | None) -> list[bytes]:
        low, high = ("-inf", now) if due else (f"({now}", "+inf")
        ids: list[str] = []
        for queue in self.waiting_queues():
            ids += decoded(self.r.zrangebyscore(self.k("waitall", queue), low, high))
        rows = self._fields(ids, "priority", "run_at", "rowid")
        order = sorted(zip(ids, rows, strict=True), key=lambda p: (
            -integer(p[1][0]), number(p[1][1]) or 0.0, integer(p[1][2])) if due
            else (number(p[1][1]) or 0.0, integer(p[1][2])))
        chosen = [i for i, _ in order][:limit] if limit else [i for i, _ in order]
        pipe = self.r.pipeline(transaction=False)
        for job_id in chosen:
            pipe.get(self.k("data", job_id))
        return [d for d in pipe.execute() if d is not None]


