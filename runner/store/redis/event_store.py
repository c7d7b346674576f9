"""Events on Redis: emit with idempotency keys, fan-out by compare-and-set, reads, prune."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from runner.errors import EventNotFound, JobNotFound
from runner.event_patterns import matches
from runner.store.event_rows import OUTCOME_OF_STATE, EventRow, HandlerOutcome, NewEvent
from runner.store.job_rows import NewJob
from runner.store.redis.codec import (
    arg,
    decoded,
    integer,
    job_args,
    jobs_args,
    number,
    text,
    token,
)
from runner.store.redis.job_index import JobIndex
from runner.store.states import LIVE

_LIVE = {s.value.encode() for s in LIVE}


def _event(h: dict[bytes, bytes]) -> EventRow:
    return EventRow(
        id=text(h[b"id"]) or "", name=text(h.get(b"name")) or "",
        data=text(h.get(b"data")) or "", key=text(h.get(b"key")),
        emitted_at=number(h.get(b"emitted_at")) or 0.0, source=text(h.get(b"source")),
        status=text(h.get(b"status")) or "", dispatched_at=number(h.get(b"dispatched_at")),
        dispatch_job=text(h.get(b"dispatch_job")), handlers=integer(h.get(b"handlers")),
        deliveries=integer(h.get(b"deliveries")))


class RedisEvents(JobIndex):
    """:class:`runner.store.event_store.EventsStore` on Redis: events and their handler jobs."""

    def insert_events(self, events: Sequence[NewEvent],
                      dispatch: Sequence[tuple[NewJob, Sequence[str]]], *, now: float,
                      dedupe_window: float, deadline: float) -> list[str]:
        flat: list[object] = [len(events)]
        for e in events:
            flat += [e.id, e.name, e.data, arg(e.key), e.source]
        flat.append(len(dispatch))
        for job, covered in dispatch:
            flat += [*job_args(job), len(covered), *covered]
        ids = self.run("insert_events", arg(float(now)), arg(float(dedupe_window)),
                       *flat, token())  # type: ignore[arg-type]
        return decoded(ids)  # type: ignore[arg-type]

    def _events(self, ids: Sequence[str]) -> list[EventRow]:
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.k("event", i))
        return [_event(h) for h in pipe.execute() if h]

    def pending_events(self, ids: Sequence[str]) -> list[EventRow]:
        return [e for e in self._events(ids) if e.status == "pending"]

    def due_pending_events(self, *, now: float, limit: int) -> list[EventRow]:
        found: list[EventRow] = []
        start = 0
        while len(found) < limit:
            ids = decoded(self.r.zrange(self.k("ev:pending"), start, start + 499))
            for event in self._events(ids):
                if event.dispatch_job is None:
                    continue
                run_at = self.r.hget(self.k("job", event.dispatch_job), "run_at")
                if run_at is not None and float(run_at) <= now:
                    found.append(event)
            if len(ids) < 500:
                break
            start += 500
        return found[:limit]

    def fan_out(self, deliveries: Mapping[str, Sequence[NewJob]], *, settle: Sequence[str] = (),
                now: float | None = None) -> dict[str, int]:
        at = time.time() if now is None else now
        flat: list[object] = [len(deliveries)]
        for event_id, jobs in deliveries.items():
            flat += [event_id, *jobs_args(jobs)]
        flat += [len(settle), *settle]
        done = self.run("fan_out", arg(float(at)), *flat)  # type: ignore[arg-type]
        pairs = list(done)  # type: ignore[call-overload]
        return {pairs[i].decode(): int(pairs[i + 1]) for i in range(0, len(pairs), 2)}

    def add_deliveries(self, event_id: str, jobs: Sequence[NewJob], *,
                       now: float | None = None, only_dead: bool = False) -> int:
        at = time.time() if now is None else now
        return int(self.run("add_deliveries", event_id, arg(float(at)), int(only_dead),
                            *jobs_args(jobs)))  # type: ignore[arg-type]

    def get_event(self, event_id: str) -> EventRow:
        h = self.r.hgetall(self.k("event", event_id))
        if not h:
            try:
                found = self._lookup(self.k("events"), event_id)
            except JobNotFound:
                raise EventNotFound(f"event id '{event_id}' is ambiguous; give more of it"
                                    ) from None
            h = self.r.hgetall(self.k("event", found)) if found else {}
        if not h:
            raise EventNotFound(f"no event with id '{event_id}'")
        return _event(h)

    def event_of_job(self, job_id: str) -> EventRow | None:
        event_id = self.r.hget(self.k("job", job_id), "event_id")
        if event_id is None:
            return None
        h = self.r.hgetall(self.k("event", event_id.decode()))
        return _event(h) if h else None

    def list_events(self, *, pattern: str | None = None, since: float | None = None,
                    status: str | None = None, limit: int = 100) -> list[EventRow]:
        found: list[EventRow] = []
        low = since if since is not None else 0.0
        start = 0
        while len(found) < limit:
            ids = decoded(self.r.zrevrangebyscore(self.k("events"), "+inf", low, start=start,
                                                  num=500))
            for event in self._events(ids):
                if status and event.status != status:
                    continue
                if pattern is not None and not matches(pattern, event.name):
                    continue
                found.append(event)
            if len(ids) < 500:
                break
            start += 500
        return found[:limit]

    def handler_outcomes(self, event_ids: Sequence[str]) -> dict[str, list[HandlerOutcome]]:
        result: dict[str, list[HandlerOutcome]] = {}
        for event_id in event_ids:
            members = self.r.zrange(self.k("evjobs", event_id), 0, -1, withscores=True)
            ids = [m.decode() for m, _ in members]
            rows = self._fields(ids, "task", "state", "attempt", "created_at")
            newest: dict[str, tuple[tuple[float, float], str, str, int]] = {}
            counts: dict[str, int] = {}
            for (job_id, rowid), (task, state, attempt, created) in zip(
                    ((m.decode(), s) for m, s in members), rows, strict=True):
                if task is None:
                    continue
                name = task.decode()
                counts[name] = counts.get(name, 0) + 1
                order = (number(created) or 0.0, rowid)
                if name not in newest or order > newest[name][0]:
                    newest[name] = (order, job_id, text(state) or "", integer(attempt))
            result[event_id] = sorted(
                (HandlerOutcome(name, OUTCOME_OF_STATE.get(state, state), job_id, counts[name],
                                attempt) for name, (_, job_id, state, attempt) in newest.items()),
                key=lambda o: o.handler)
        return result

    def prune_events(self, older_than_days: float, *, now: float | None = None, batch: int = 1000,
                     dry_run: bool = False) -> int:
        cutoff = (time.time() if now is None else now) - older_than_days * 86400
        total = 0
        # a copied event's id goes with it once copies say how far they read (see
        # lua_transfer); read before the id is looked up, it covers the id's row
        read = self.r.hget(self.k("copied"), "events_read")
        for event_id in decoded(self.r.zrangebyscore(self.k("events"), "-inf", f"({cutoff}")):
            h = self.r.hmget(self.k("event", event_id), "status", "key")
            if h[0] in (None, b"pending"):
                continue
            jobs = decoded(self.r.zrange(self.k("evjobs", event_id), 0, -1))
            if any(s in _LIVE for (s,) in self._fields(jobs, "state")):
                continue
            total += 1
            if dry_run:
                continue
            copied = read is not None and self.r.sismember(self.k("copied:events"), event_id)
            pipe = self.r.pipeline(transaction=True)
            pipe.delete(self.k("event", event_id), self.k("evjobs", event_id))
            for index in ("events", "ev:unhandled", "ev:pending"):
                pipe.zrem(self.k(index), event_id)
            if copied:
                pipe.srem(self.k("copied:events"), event_id)
                pipe.hset(self.k("copied"), "events_upto", read)
            pipe.execute()
            if h[1] is not None and self.r.hget(self.k("evkey"), h[1]) == event_id.encode():
                self.r.hdel(self.k("evkey"), h[1])
        return total

    def count_events(self, status: str | None = None) -> int:
        if status is None:
            return int(self.r.zcard(self.k("events")))
        if status in ("pending", "unhandled"):
            return int(self.r.zcard(self.k("ev:" + status)))
        if status == "dispatched":
            return (int(self.r.zcard(self.k("events"))) - self.count_events("pending")
                    - self.count_events("unhandled"))
        return 0

    def count_unhandled(self) -> int:
        return self.count_events("unhandled")

    def unhandled_events(self, *, limit: int = 200) -> list[EventRow]:
        return self._events(decoded(self.r.zrevrange(self.k("ev:unhandled"), 0, limit - 1)))
