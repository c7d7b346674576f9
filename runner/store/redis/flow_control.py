"""Flow control on Redis: pause and resume, cancel requests, backpressure counts.

The writes are scripts of :mod:`runner.store.redis.lua_flow`; the claim reads
the pauses and the lifeline the cancel requests in their own scripts, so every
worker on every host sees the same state.
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.store.redis.codec import NULL, US, arg
from runner.store.redis.connection import RedisBase
from runner.store.rows import PauseRow
from runner.store.states import JobState

#: What can be paused.
KINDS = ("queue", "task")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


class RedisFlowControl(RedisBase):
    """:class:`runner.store.flow_control.FlowControlStore` on Redis."""

    def set_pause(self, kind: str, name: str, paused: bool, *, now: float,
                  by: str | None = None) -> bool:
        _check_kind(kind)
        return bool(self.run("set_pause", kind, name, arg(bool(paused)), arg(float(now)),
                             arg(by)))

    def seed_pauses(self, kind: str, names: Sequence[str], *, now: float) -> None:
        _check_kind(kind)
        if names:
            self.run("seed_pauses", kind, arg(float(now)), *names)

    def list_pauses(self) -> list[PauseRow]:
        rows = []
        for field, value in self.r.hgetall(self.k("pauses")).items():
            kind, _, name = field.decode().partition(US)
            paused, at, by = value.split(US.encode(), 2)
            rows.append(PauseRow(kind, name, paused == b"1", float(at),
                                 None if by == NULL else by.decode()))
        return sorted(rows, key=lambda r: (r.kind, r.name))

    def request_cancel(self, job_id: str, *, by: str, now: float) -> JobState | None:
        state = self.run("request_cancel", job_id, by, arg(float(now)))
        return None if state is None else JobState(state.decode())  # type: ignore[union-attr]

    def cancel_requests(self, job_ids: Sequence[str]) -> dict[str, str]:
        ids = list(job_ids)
        if not ids or not self.r.exists(self.k("cancels")):
            return {}
        asked = self.r.hmget(self.k("cancels"), ids)
        named = [(i, a) for i, a in zip(ids, asked, strict=True) if a is not None]
        if not named:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for job_id, _ in named:
            pipe.hmget(self.k("job", job_id), "attempt", "state")
        found = {}
        for (job_id, value), (attempt, state) in zip(named, pipe.execute(), strict=True):
            wanted, _, by = value.partition(US.encode())
            if state == JobState.EXECUTING.value.encode() and attempt == wanted:
                found[job_id] = by.decode()
        return found

    def release_parked(self) -> int:
        return 0  # a claim lets parked groups out itself, by the limits it applies

    def backpressure_totals(self) -> dict[str, tuple[int, int]]:
        totals: dict[str, list[int]] = {}
        for field, n in self.r.hgetall(self.k("backpressure")).items():
            queue, _, what = field.decode().rpartition(US)
            totals.setdefault(queue, [0, 0])[0 if what == "rejected" else 1] += int(n)
        return {q: (r, d) for q, (r, d) in totals.items()}
