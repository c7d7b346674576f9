"""Aggregate reads on Redis: failure groups, per-minute and per-second rates, windows.

Rates read the finished sets (``fin:completed`` by ``finished_at``) and the failed
attempts (``failed`` by ``failed_at``); failure groups read the newest retrying and
dead jobs, up to a cap, so the cost stays the same however many failed; the jobs of one
group, and the messages of one error type, are kept apart (``fgroup``, ``fmsgs``).
"""

from __future__ import annotations

from collections.abc import Iterator

from runner.store.redis.codec import decoded, integer, number, text
from runner.store.redis.job_index import JobIndex, _states_of
from runner.store.rows import FailureRow, JobFilter, JobRow
from runner.store.states import FAILED, LIVE, JobState
from runner.store.views import FAILURE_CAP


class RedisStats(JobIndex):
    """:class:`runner.store.job_stats.StatsStore` on Redis."""

    # -- failures ------------------------------------------------------------------------

    def failure_rows(self, *, limit: int = 200, cap: int = FAILURE_CAP) -> list[FailureRow]:
        groups: dict[tuple[str | None, str | None], list] = {}
        for _, (etype, message, state, task, last) in self._newest_failed(cap):
            g = groups.setdefault((text(etype), text(message)), [0, 0, 0, [], None])
            g[0] += 1
            g[1] += text(state) == JobState.DEAD
            g[2] += text(state) == JobState.RETRYING
            if text(task) not in g[3]:
                g[3].append(text(task))
            at = number(last)
            if at is not None and (g[4] is None or at > g[4]):
                g[4] = at
        rows = [(e, m, n, d, r, ",".join(t for t in tasks if t) or None, last)
                for (e, m), (n, d, r, tasks, last) in groups.items()]
        rows.sort(key=lambda r: (-r[2], -(r[6] or 0.0)))
        return rows[:limit]

    def failure_messages(self, error_type: str | None, *, prefix: str = "") -> list[str | None]:
        self._index_failures()
        found = [None if m == b"\0" else m.decode()
                 for m in self.r.hkeys(self._failure_messages_key(error_type))]
        return [m for m in found if (m is None and not prefix)
                or (m is not None and m.startswith(prefix))]

    def failure_signature(self, *, cap: int = FAILURE_CAP) -> tuple[int, int]:
        count = sum(self.r.zcard(self.k("state", s.value)) for s in FAILED)
        return min(count, cap + 1), integer(self.r.get(self.k("errseq")))

    def _newest_failed(self, cap: int) -> list[tuple[str, list[bytes | None]]]:
        """The newest ``cap`` failed jobs: each state's set is ordered by creation (rowid)."""
        newest = sorted((m for s in FAILED
                         for m in self.r.zrevrange(self.k("state", s.value), 0, cap - 1,
                                                   withscores=True)),
                        key=lambda m: m[1], reverse=True)[:cap]
        ids = [m.decode() for m, _ in newest]
        rows = self._fields(ids, "error_type", "error_message", "state", "task",
                            "last_failed_at")
        return list(zip(ids, rows, strict=True))

    # -- rates and windows -----------------------------------------------------------------

    def completed_per_minute(self, start: float) -> list[tuple[int, int]]:
        return _buckets((at - start) // 60 for _, at in self._finished(start))

    def failed_per_minute(self, start: float) -> list[tuple[int, int]]:
        return _buckets((at - start) // 60 for _, at in self._failures(start))

    def finished_per_second(self, since: float,
                            until: float | None = None) -> tuple[dict[int, int], dict[int, int]]:
        end = float("inf") if until is None else until
        return (dict(_buckets(at for _, at in self._finished(since, end))),
                dict(_buckets(at for _, at in self._failures(since, end))))

    def completions_since(self, since: float) -> list[tuple[str, str, float | None, float]]:
        done = self._finished(since)
        rows = self._fields([i for i, _ in done], "task", "queue", "started_at")
        return [(text(t) or "", text(q) or "", number(s), at)
                for (_, at), (t, q, s) in zip(done, rows, strict=True) if t is not None]

    def failed_attempts_since(self, since: float) -> list[tuple[str, str, float, int]]:
        failures = self._failures(since)
        parsed = [(m.split(":", 2), at) for m, at in failures]
        rows = self._fields([p[2] for p, _ in parsed], "task", "queue", "attempt", "state")
        live = {s.value for s in LIVE}
        out = []
        for (p, at), (t, q, attempt, state) in zip(parsed, rows, strict=True):
            if t is None:
                continue
            retried = int(int(p[1]) < integer(attempt) or (text(state) or "") in live)
            out.append((t.decode(), text(q) or "", at, retried))
        return out

    def dead_by_task(self, since: float) -> list[tuple[str, str, int | None, int]]:
        ids = decoded(self.r.zrange(self.k("state", JobState.DEAD.value), 0, -1))
        groups: dict[tuple[str, str], list[int]] = {}
        for t, q, f in self._fields(ids, "task", "queue", "finished_at"):
            g = groups.setdefault((text(t) or "", text(q) or ""), [0, 0])
            g[0] += int((number(f) or 0.0) >= since)
            g[1] += 1
        return [(t, q, a, b) for (t, q), (a, b) in groups.items()]

    def job_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                 offset: int = 0) -> list[JobRow]:
        return self.list_jobs(filters, limit=limit, offset=offset)

    def count_jobs_capped(self, filters: JobFilter | None = None, *,
                          cap: int = 10_000) -> tuple[int, bool]:
        f = filters or JobFilter()
        self._settle()
        if self._plain(f):
            states = _states_of(f)
            if f.queue:
                counts = self._qstate()
                count = sum(n for (q, s), n in counts.items()
                            if q == f.queue and (states is None or s in states))
            elif states is not None:
                count = sum(self.r.zcard(self.k("state", s)) for s in states)
            else:
                count = self.r.zcard(self.k("jobs"))
            return min(count, cap), count > cap
        if f.task and not (f.queue or f.state or f.text or f.event_id or f.worker or f.error
                           or f.error_text):
            self._list_by_queue_and_task()
            count = int(self.r.zcard(self.k("tjobs", f.task)))
            return min(count, cap), count > cap
        count = 0
        for _ in self._rows(f):
            count += 1
            if count > cap:
                break
        return min(count, cap), count > cap

    def count_in_state(self, state: JobState) -> int:
        self._settle()
        return int(self.r.zcard(self.k("state", JobState(state).value)))

    def unfinished_by_queue(self) -> list[tuple[str, str, int]]:
        return [(q, s, n) for (q, s), n in sorted(self._qstate().items())
                if s not in (JobState.COMPLETED.value, JobState.CANCELLED.value)]

    def counts_by_queue_and_state(self) -> list[tuple[str, str, int]]:
        return [(q, s, n) for (q, s), n in sorted(self._qstate().items())]

    def queue_oldest(self, now: float) -> list[tuple[str, float | None]]:
        found = []
        self._settle()
        for q in sorted(decoded(self.r.smembers(self.k("queues")))):
            first = self.r.zrange(self.k("waitall", q), 0, 0, withscores=True)
            if first:
                found.append((q, first[0][1] if first[0][1] <= now else None))
        return found

    def waiting_in_queue(self, queue: str) -> int:
        self._settle()
        return int(self.r.zcard(self.k("waitall", queue)))

    def running_per_queue(self) -> dict[str, int]:
        return {q: n for (q, s), n in self._qstate().items() if s == JobState.EXECUTING.value}

    def running_jobs(self) -> list[tuple[str | None, str, str, float | None]]:
        ids = decoded(self.r.zrange(self.k("state", JobState.EXECUTING.value), 0, -1))
        rows = self._fields(ids, "lease_owner", "task", "started_at")
        out = [(text(o), i, text(t) or "", number(s)) for i, (o, t, s) in zip(ids, rows,
                                                                              strict=True)]
        return sorted(out, key=lambda r: (r[3] is not None, r[3] or 0.0))

    def active_schedule_fires(self) -> list[tuple[str, float | None]]:
        return [(m.decode(), s) for m, s in self.r.zrange(self.k("sched_due"), 0, -1,
                                                            withscores=True)]


def _buckets(values: Iterator[float]) -> list[tuple[int, int]]:
    counts: dict[int, int] = {}
    for v in values:
        counts[int(v)] = counts.get(int(v), 0) + 1
    return sorted(counts.items())
