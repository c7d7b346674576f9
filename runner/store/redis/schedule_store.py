"""Schedules on Redis: sync, the firing compare-and-set (one script per schedule), reads."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from runner.store.job_rows import NewJob
from runner.store.redis.codec import arg, decoded, integer, job_args, number, text
from runner.store.redis.connection import RedisBase
from runner.store.schedule_rows import FirePlan, FireResult, RunRow, ScheduleRow, SyncItem


def _item_args(item: SyncItem) -> list[object]:
    return [item.name, item.task, item.expression, item.tz, item.misfire, item.overlap,
            arg(bool(item.enabled)), arg(float(item.next_fire_at))]


class RedisSchedules(RedisBase):
    """:class:`runner.store.schedule_store.SchedulesStore` on Redis."""

    def sync_schedules(self, items: Sequence[SyncItem], *, now: float,
                       orphan_others: bool = True) -> None:
        flat = [a for item in items for a in _item_args(item)]
        self.run("sync_schedules", arg(float(now)), arg(bool(orphan_others)), len(items),
                 *flat)  # type: ignore[arg-type]

    def adopt_schedules(self, names: Sequence[str], *, now: float) -> list[str]:
        if not names:
            return []
        adopted = self.run("adopt_schedules", arg(float(now)), *names)
        return sorted(decoded(adopted))  # type: ignore[arg-type]

    def ensure_schedule(self, item: SyncItem, *, now: float) -> None:
        self.run("ensure_schedule", arg(float(now)), *_item_args(item))  # type: ignore[arg-type]

    def due_schedules(self, now: float) -> list[tuple[str, float]]:
        return [(m.decode(), s) for m, s in self.r.zrangebyscore(
            self.k("sched_due"), "-inf", now, withscores=True)]

    def next_due(self) -> float | None:
        first = self.r.zrange(self.k("sched_due"), 0, 0, withscores=True)
        return first[0][1] if first else None

    def fire(self, plans: Sequence[FirePlan], *, clock: Callable[[], float],
             queue_size: int) -> list[FireResult]:
        results = []
        for plan in plans:
            fired_at = clock()
            jobs = [a for job in plan.jobs for a in job_args(job)]
            raw = self.run("fire", arg(float(fired_at)), int(queue_size), plan.name,
                           arg(float(plan.expected)), arg(float(plan.next_fire_at)),
                           plan.overlap, int(plan.dropped), len(plan.slots),
                           *(arg(float(s)) for s in plan.slots), *jobs)
            done = json.loads(raw)  # type: ignore[arg-type]
            result = FireResult(plan.name, bool(done["won"]), fired_at)
            if result.won:
                result.enqueued = [(float(s), j) for s, j in _list(done.get("enqueued"))]
                result.skipped = [(float(s), r) for s, r in _list(done.get("skipped"))]
            results.append(result)
        return results

    def record_manual_run(self, name: str, job: NewJob, *, now: float,
                          queue_size: int) -> str | None:
        return text(self.run("record_manual_run", name, arg(float(now)), int(queue_size),
                             *job_args(job)))  # type: ignore[arg-type]

    def set_paused(self, name: str, paused: bool, *, now: float,
                   next_fire_at: float | None = None) -> bool:
        return bool(self.run("set_paused", name, arg(bool(paused)), arg(float(now)),
                             arg(None if next_fire_at is None else float(next_fire_at))))

    def set_skip_next(self, name: str, skip: bool = True, *, now: float) -> bool:
        return bool(self.run("set_skip_next", name, arg(bool(skip)), arg(float(now))))

    def list_schedules(self, name: str | None = None) -> list[ScheduleRow]:
        names = [name] if name is not None else decoded(
            self.r.zrange(self.k("schedules"), 0, -1))
        pipe = self.r.pipeline(transaction=False)
        for n in names:
            pipe.hgetall(self.k("sched", n))
        rows = [h for h in pipe.execute() if h]
        pipe = self.r.pipeline(transaction=False)
        for h in rows:
            last = h.get(b"last_job_id")
            pipe.hget(self.k("job", last.decode()) if last else self.k("job", ""), "state")
        states = pipe.execute()
        return [_schedule(h, text(s)) for h, s in zip(rows, states, strict=True)]

    def get_schedule(self, name: str) -> ScheduleRow | None:
        rows = self.list_schedules(name)
        return rows[0] if rows else None

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[RunRow]:
        fields = self.r.zrevrange(self.k("runt", name), 0, limit - 1)
        if not fields:
            return []
        records = [json.loads(r) for r in self.r.hmget(self.k("runs", name), fields) if r]
        rows = [RunRow(name, float(r[0]), bool(r[1]), float(r[2]),
                       None if r[3] is None else r[3], r[4]) for r in records]
        rows.sort(key=lambda r: (r.fired_at, r.slot))
        return rows

    def prune_runs(self, *, before: float) -> int:
        total = 0
        for name in decoded(self.r.zrange(self.k("schedules"), 0, -1)):
            old = self.r.zrangebyscore(self.k("runt", name), "-inf", f"({before}")
            if old:
                self.r.hdel(self.k("runs", name), *old)
                self.r.zrem(self.k("runt", name), *old)
                total += len(old)
        return total

    def count_schedules(self) -> int:
        return int(self.r.zcard(self.k("schedules")))

def _list(value: object) -> list:
    # cjson encodes an empty Lua table as an object
    return value if isinstance(value, list) else []


def _schedule(h: dict[bytes, bytes], outcome: str | None) -> ScheduleRow:
    def s(name: str) -> str | None:
        return text(h.get(name.encode()))

    def f(name: str) -> float | None:
        return number(h.get(name.encode()))

    def b(name: str) -> bool:
        return h.get(name.encode()) == b"1"

    return ScheduleRow(
        name=s("name") or "", task=s("task") or "", expression=s("expression") or "",
        tz=s("tz") or "", misfire=s("misfire") or "", overlap=s("overlap") or "",
        next_fire_at=f("next_fire_at"), last_slot_at=f("last_slot_at"),
        last_fired_at=f("last_fired_at"), last_lag=f("last_lag"), last_job_id=s("last_job_id"),
        enabled=b("enabled"), paused=b("paused"), orphaned=b("orphaned"),
        skip_next=b("skip_next"), fired=integer(h.get(b"fired")),
        skipped=integer(h.get(b"skipped")), last_skip_at=f("last_skip_at"),
        last_skip_reason=s("last_skip_reason"), created_at=f("created_at") or 0.0,
        updated_at=f("updated_at") or 0.0, last_outcome=outcome)
