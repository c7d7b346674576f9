"""The metrics scrape's snapshot on Redis, read from the kept counts and sets.

Lifetime totals per task are not kept on Redis: a snapshot's ``totals`` is empty.
"""

from __future__ import annotations

import time

from runner.store.redis.codec import decoded
from runner.store.redis.job_index import JobIndex
from runner.store.states import JobState
from runner.store.views import DatabaseSnapshot, QueueGauges


class RedisScrape(JobIndex):
    """:class:`runner.store.metrics_scrape.ScrapeStore` on Redis."""

    def read_snapshot(self, *, now: float | None = None,
                      heartbeat_limit: float = 15.0) -> DatabaseSnapshot:
        at = time.time() if now is None else now
        running = self.running_per_queue()
        queues = []
        for queue in sorted(set(self.waiting_queues()) | set(running)):
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
        return DatabaseSnapshot(at, [], queues, dead, workers, lags)

    def waiting_queues(self) -> list[str]:
        return sorted(q for q in decoded(self.r.smembers(self.k("queues")))
                      if self.r.zcard(self.k("waitall", q)))
