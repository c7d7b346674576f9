"""The read side on Redis: job listings, counts, backlogs, bulk action sets.

Listings walk an index newest first (``jobs``, ``state:<s>``, ``evjobs:<e>`` or a
worker's in-flight set, by rowid) and read the job hashes in pipelined chunks,
filtering the rest of a :class:`JobFilter` here; counts with no filter but a
state or queue read the kept counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

from runner.errors import JobNotFound
from runner.store.redis.codec import US, decoded, integer, job_row, number, text
from runner.store.redis.jobs import JobMachine
from runner.store.rows import AttemptError, JobFilter, JobRow, QueueDepth
from runner.store.states import ALL, FAILED, WAITING, JobState

_CHUNK = 500


def _states_of(filters: JobFilter) -> tuple[str, ...] | None:
    if not filters.state:
        return None
    if filters.state == "waiting":
        return tuple(s.value for s in WAITING)
    if filters.state == "failed":
        return tuple(s.value for s in FAILED)
    return (filters.state,)


def _matches(row: JobRow, filters: JobFilter, states: tuple[str, ...] | None) -> bool:
    if states is not None and row.state not in states:
        return False
    for name in ("queue", "task", "event_id"):
        wanted = getattr(filters, name)
        if wanted and getattr(row, name) != wanted:
            return False
    if filters.worker and row.lease_owner != filters.worker:
        return False
    if filters.text:
        needle = filters.text.casefold()
        return any(needle in (v or "").casefold()
                   for v in (row.id, row.task, row.args, row.error_message))
    return True


class Reads(JobMachine):
    """Queries of :mod:`runner.store.queries` and :mod:`runner.store.stats`, on Redis."""

    # -- walking an index ------------------------------------------------------------------

    def _index_keys(self, filters: JobFilter) -> list[str]:
        states = _states_of(filters)
        if filters.event_id:
            return [self.k("evjobs", filters.event_id)]
        if states is not None:
            return [self.k("state", s) for s in states]
        return [self.k("jobs")]

    def _ids(self, filters: JobFilter, *, newest_first: bool = True) -> Iterator[tuple[int, str]]:
        """(rowid, id) of the candidates of ``filters``, by rowid."""
        if filters.worker and not filters.event_id:
            ids = decoded(self.r.smembers(self.k("inflight", filters.worker)))
            pipe = self.r.pipeline(transaction=False)
            for i in ids:
                pipe.hget(self.k("job", i), "rowid")
            pairs = [(integer(r), i) for r, i in zip(pipe.execute(), ids, strict=True) if r]
            yield from sorted(pairs, reverse=newest_first)
            return
        keys = self._index_keys(filters)
        if len(keys) == 1:
            start = 0
            while True:
                if newest_first:
                    chunk = self.r.zrevrange(keys[0], start, start + _CHUNK - 1, withscores=True)
                else:
                    chunk = self.r.zrange(keys[0], start, start + _CHUNK - 1, withscores=True)
                for member, score in chunk:
                    yield int(score), member.decode()
                if len(chunk) < _CHUNK:
                    return
                start += _CHUNK
        pairs = []
        for key in keys:
            pairs += [(int(s), m.decode()) for m, s in self.r.zrange(key, 0, -1, withscores=True)]
        yield from sorted(pairs, reverse=newest_first)

    def _rows(self, filters: JobFilter | None, *, newest_first: bool = True
              ) -> Iterator[tuple[int, JobRow]]:
        chosen = filters or JobFilter()
        states = _states_of(chosen)
        batch: list[tuple[int, str]] = []

        def flush() -> Iterator[tuple[int, JobRow]]:
            pipe = self.r.pipeline(transaction=False)
            for _, i in batch:
                pipe.hgetall(self.k("job", i))
            for (rowid, _), fields in zip(batch, pipe.execute(), strict=True):
                if fields:
                    row = job_row(fields)
                    if _matches(row, chosen, states):
                        yield rowid, row

        for pair in self._ids(chosen, newest_first=newest_first):
            batch.append(pair)
            if len(batch) >= _CHUNK:
                yield from flush()
                batch = []
        if batch:
            yield from flush()

    def _plain(self, filters: JobFilter | None) -> bool:
        f = filters or JobFilter()
        return not (f.task or f.text or f.event_id or f.worker)

    # -- queries -------------------------------------------------------------------------

    def list_jobs(self, filters: JobFilter | None = None, *, limit: int = 100,
                  offset: int = 0) -> list[JobRow]:
        found: list[JobRow] = []
        for _, row in self._rows(filters):
            if offset:
                offset -= 1
                continue
            found.append(row)
            if len(found) >= limit:
                break
        return found

    def job_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                 offset: int = 0) -> list[JobRow]:
        return self.list_jobs(filters, limit=limit, offset=offset)

    def count_jobs(self, filters: JobFilter | None = None) -> int:
        return self.count_jobs_capped(filters, cap=2**62)[0]

    def count_jobs_capped(self, filters: JobFilter | None = None, *,
                          cap: int = 10_000) -> tuple[int, bool]:
        f = filters or JobFilter()
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
        count = 0
        for _ in self._rows(f):
            count += 1
            if count > cap:
                break
        return min(count, cap), count > cap

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

    def _lookup(self, index: str, ident: str) -> str | None:
        """The one id of ``index`` starting (4+ chars) or ending (6+ chars) with ``ident``."""
        rows: list[bytes] = []
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in ident)
        if len(ident) >= 4:  # a scan: only the CLI and the dashboard look ids up this way
            rows = [m for m, _ in self.r.zscan_iter(index, match=f"{escaped}*", count=1000)][:2]
        if not rows and len(ident) >= 6:
            rows = [m for m, _ in self.r.zscan_iter(index, match=f"*{escaped}", count=1000)][:2]
        if len(rows) > 1:
            raise JobNotFound(f"job id '{ident}' is ambiguous; give more of it")
        return rows[0].decode() if rows else None

    def job_errors(self, job_id: str) -> list[AttemptError]:
        return [AttemptError(*json.loads(r)[1:]) for r in
                self.r.lrange(self.k("errors", job_id), 0, -1)]

    def _qstate(self) -> dict[tuple[str, str], int]:
        counts = {}
        for field, n in self.r.hgetall(self.k("qstate")).items():
            queue, _, state = field.decode().rpartition(US)
            if int(n) > 0:
                counts[(queue, state)] = int(n)
        return counts

    def counts_by_state(self) -> dict[str, int]:
        pipe = self.r.pipeline(transaction=False)
        for s in ALL:
            pipe.zcard(self.k("state", s.value))
        return {s.value: int(n) for s, n in zip(ALL, pipe.execute(), strict=True)}

    def count_in_state(self, state: JobState) -> int:
        return int(self.r.zcard(self.k("state", JobState(state).value)))

    def unfinished_by_queue(self) -> list[tuple[str, str, int]]:
        return [(q, s, n) for (q, s), n in sorted(self._qstate().items())
                if s not in (JobState.COMPLETED.value, JobState.CANCELLED.value)]

    def counts_by_queue_and_state(self) -> list[tuple[str, str, int]]:
        return [(q, s, n) for (q, s), n in sorted(self._qstate().items())]

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

    def queue_oldest(self, now: float) -> list[tuple[str, float | None]]:
        found = []
        for q in sorted(decoded(self.r.smembers(self.k("queues")))):
            first = self.r.zrange(self.k("waitall", q), 0, 0, withscores=True)
            if first:
                found.append((q, first[0][1] if first[0][1] <= now else None))
        return found

    def waiting_in_queue(self, queue: str) -> int:
        return int(self.r.zcard(self.k("waitall", queue)))

    def running_per_queue(self) -> dict[str, int]:
        return {q: n for (q, s), n in self._qstate().items() if s == JobState.EXECUTING.value}

    def running_jobs(self) -> list[tuple[str | None, str, str, float | None]]:
        ids = decoded(self.r.zrange(self.k("state", JobState.EXECUTING.value), 0, -1))
        rows = self._fields(ids, "lease_owner", "task", "started_at")
        out = [(text(o), i, text(t) or "", number(s)) for i, (o, t, s) in zip(ids, rows,
                                                                              strict=True)]
        return sorted(out, key=lambda r: (r[3] is not None, r[3] or 0.0))

    def _fields(self, ids: Sequence[str], *names: str) -> list[list[bytes | None]]:
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hmget(self.k("job", i), *names)
        return pipe.execute()

    def stored_result(self, job_id: str) -> bytes | None:
        return self.r.hget(self.k("kv"), job_id)

    # -- bulk actions ----------------------------------------------------------------------

    def count_for_bulk(self, filters: JobFilter, states: Sequence[str]) -> tuple[int, int]:
        count, top = 0, 0
        for rowid, _ in self._bulk_rows(filters, states, newest_first=True):
            count += 1
            top = max(top, rowid)
        return count, top

    def _bulk_rows(self, filters: JobFilter, states: Sequence[str], *,
                   newest_first: bool) -> Iterator[tuple[int, JobRow]]:
        wanted = {str(s) for s in states}
        plain = replace(filters, state=None)
        for rowid, row in self._rows(plain, newest_first=newest_first):
            if row.state in wanted:
                yield rowid, row

    def run_bulk(self, verb: str, filters: JobFilter, states: Sequence[str], *, up_to_rowid: int,
                 now: float, chunk: int = 500) -> int:
        ids = [row.id for rowid, row in self._bulk_rows(filters, states, newest_first=False)
               if rowid <= up_to_rowid]
        total = 0
        for start in range(0, len(ids), chunk):
            total += len(self.by_hand(verb, ids[start:start + chunk], states, now=now,
                                      up_to_rowid=up_to_rowid))
        return total
