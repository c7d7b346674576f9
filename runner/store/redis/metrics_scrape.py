"""The metrics scrape's snapshot on Redis, read from the kept counts and sets.

Lifetime totals per task and queue are the ``totals`` hash the scripts add to (see
:mod:`runner.store.redis.lua_jobs`).
"""

from __future__ import annotations

from runner.store.redis.codec import US, decoded, integer, number, text
from runner.store.redis.job_index import JobIndex
from runner.store.states import JobState, WorkerState
from runner.store.views import BUCKETS, DatabaseSnapshot, QueueGauges, TaskTotals


class RedisScrape(JobIndex):
    """:class:`runner.store.metrics_scrape.ScrapeStore` on Redis."""

    def read_snapshot(self, *, now: float | None = None,
                      heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
        # Waiting ages and heartbeats are measured against times every host wrote by
        # the server's clock, or corrected to it: the scraping host's may be off.
        if now is None:
            seconds, micros = self.r.time()
            at = seconds + micros / 1e6
        else:
            at = now
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
        workers = self._fresh_workers(at, heartbeat_limit)
        lags = {name: max(0.0, at - t) if t is not None else 0.0
                for name, t in self.active_schedule_fires()}
        paused = {p.name: p.paused for p in self.list_pauses() if p.kind == "queue"}
        return DatabaseSnapshot(at, totals, queues, dead, workers, lags,
                                self.backpressure_totals(), paused)

    def _fresh_workers(self, now: float, limit: float) -> int:
        """Running workers whose last heartbeat, written by their own clock, is at most
        ``limit`` old by the server's (every registered worker is read: they are few)."""
        beats = self.r.zrange(self.k("workers"), 0, -1, withscores=True)
        pipe = self.r.pipeline(transaction=False)
        for owner, _ in beats:
            pipe.hmget(self.k("worker", owner.decode()), "state", "clock_offset")
        return sum(1 for (_, beat), (state, offset) in zip(beats, pipe.execute(), strict=True)
                   if text(state) == WorkerState.RUNNING.value
                   and beat - (number(offset) or 0.0) >= now - limit)

    def read_totals(self) -> list[TaskTotals]:
        """Every (task, queue)'s lifetime counters: one read of a hash as small as the tasks."""
        per: dict[tuple[str, str], dict[str, bytes]] = {}
        self._settle()
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
        self._settle()
        return sorted(q for q in decoded(self.r.smembers(self.k("queues")))
                      if self.r.zcard(self.k("waitall", q)))
