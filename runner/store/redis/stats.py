"""Aggregate reads on Redis: failure groups, per-minute and per-second rates, windows.

Rates read the finished sets (``fin:completed`` by ``finished_at``) and the failed
attempts (``failed`` by ``failed_at``); failure groups read the retrying and dead
jobs only, so the cost follows the failures, not the history.
"""

from __future__ import annotations

from collections.abc import Iterator

from runner.store.redis.codec import decoded, integer, number, text
from runner.store.redis.reads import Reads
from runner.store.rows import FailureRow
from runner.store.states import FAILED, LIVE, JobState


class Stats(Reads):
    """The reads of :mod:`runner.store.stats` that aggregate."""

    # -- failures ------------------------------------------------------------------------

    def _failed(self) -> list[tuple[str, list[bytes | None]]]:
        ids = [i for s in FAILED for i in decoded(self.r.zrange(self.k("state", s.value), 0, -1))]
        rows = self._fields(ids, "error_type", "error_message", "state", "task",
                            "last_failed_at")
        return list(zip(ids, rows, strict=True))

    def failure_rows(self, *, limit: int = 200) -> list[FailureRow]:
        groups: dict[tuple[str | None, str | None], list] = {}
        for _, (etype, message, state, task, last) in self._failed():
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

    def failure_group_ids(self, error_type: str | None, message: str | None, *,
                          limit: int = 100_000) -> list[str]:
        return [i for i, (e, m, *_) in self._failed()
                if text(e) == error_type and text(m) == message][:limit]

    def failure_signature(self) -> tuple[int, int]:
        count = sum(self.r.zcard(self.k("state", s.value)) for s in FAILED)
        return count, integer(self.r.get(self.k("errseq")))

    # -- rates and windows -----------------------------------------------------------------

    def _finished(self, since: float, until: float = float("inf")) -> list[tuple[str, float]]:
        top = "+inf" if until == float("inf") else f"({until}"
        return [(m.decode(), s) for m, s in self.r.zrangebyscore(
            self.k("fin", JobState.COMPLETED.value), since, top, withscores=True)]

    def _failures(self, since: float, until: float = float("inf")) -> list[tuple[str, float]]:
        top = "+inf" if until == float("inf") else f"({until}"
        return [(m.decode(), s) for m, s in self.r.zrangebyscore(
            self.k("failed"), since, top, withscores=True)]

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


def _buckets(values: Iterator[float]) -> list[tuple[int, int]]:
    counts: dict[int, int] = {}
    for v in values:
        counts[int(v)] = counts.get(int(v), 0) + 1
    return sorted(counts.items())
