"""Stored log records on Redis: one sorted set of cjson rows scored by their id.

Ids increase, so "the newest N" and "after id X" are range reads; a job's records
are also indexed by job (``joblogs:<job>``) with their byte count (``logbytes``).
``write_logs`` with ``trim_to`` keeps about that many newest records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from runner.store.redis.codec import arg, decoded, token
from runner.store.redis.connection import RedisBase
from runner.store.rows import LogFilter, LogRow, LogTuple

_CHUNK = 1000


def _row(raw: bytes) -> LogRow:
    values = json.loads(raw)
    return LogRow(int(values[0]), float(values[1]), int(values[2]), *values[3:])


class RedisLogs(RedisBase):
    """:class:`runner.store.log_store.LogsStore` on Redis."""

    def write_logs(self, rows: Sequence[LogTuple], *, trim_to: int = 0,
                   deadline: float = 5.0) -> None:
        flat: list[object] = []
        for created, level, name, message, job_id, task, worker in rows:
            flat += [arg(float(created)), int(level), name, message, arg(job_id), arg(task),
                     arg(worker)]
        self.run("write_logs", int(trim_to), len(rows), *flat,  # type: ignore[arg-type]
                 token())

    def _walk(self, after_id: int, newest_first: bool) -> Iterator[LogRow]:
        key = self.k("logs")
        if newest_first:
            top = "+inf"
            while True:
                chunk = self.r.zrevrangebyscore(key, top, f"({after_id}", start=0, num=_CHUNK)
                for raw in chunk:
                    yield _row(raw)
                if len(chunk) < _CHUNK:
                    return
                top = f"({_row(chunk[-1]).id}"
        else:
            low = f"({after_id}"
            while True:
                chunk = self.r.zrangebyscore(key, low, "+inf", start=0, num=_CHUNK)
                for raw in chunk:
                    yield _row(raw)
                if len(chunk) < _CHUNK:
                    return
                low = f"({_row(chunk[-1]).id}"

    def _job_rows(self, job_id: str, after_id: int) -> list[LogRow]:
        ids = [int(i) for i in decoded(self.r.zrangebyscore(self.k("joblogs", job_id),
                                                             f"({after_id}", "+inf"))]
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.zrangebyscore(self.k("logs"), i, i)
        return [_row(raw) for found in pipe.execute() for raw in found]

    def _select(self, keep, *, job_id: str | None, after_id: int,  # noqa: ANN001
                limit: int) -> list[LogRow]:
        if job_id:
            rows = [r for r in self._job_rows(job_id, after_id) if keep(r)]
            return rows[:limit] if after_id else rows[-limit:]
        found: list[LogRow] = []
        for row in self._walk(after_id, newest_first=not after_id):
            if keep(row):
                found.append(row)
                if len(found) >= limit:
                    break
        return found if after_id else found[::-1]

    def read_logs(self, filters: LogFilter | None = None, *, after_id: int = 0,
                  limit: int = 200) -> list[LogRow]:
        f = filters or LogFilter()

        def keep(row: LogRow) -> bool:
            return ((not f.task or row.task == f.task) and row.level >= f.level
                    and (not f.worker_only or row.job_id is None))

        return self._select(keep, job_id=f.job_id, after_id=after_id, limit=limit)

    def tail_logs(self, *, after_id: int = 0, job_id: str | None = None, min_level: int = 0,
                  text: str | None = None, limit: int = 500) -> list[LogRow]:
        needle = (text or "").casefold()

        def keep(row: LogRow) -> bool:
            return row.level >= min_level and (not needle or any(
                needle in (v or "").casefold() for v in (row.message, row.logger, row.task)))

        return self._select(keep, job_id=job_id, after_id=after_id, limit=limit)

    def job_log_bytes(self, job_id: str) -> int:
        value = self.r.hget(self.k("logbytes"), job_id)
        return int(value) if value else 0

    def prune_logs(self, before: float, *, batch: int = 1000, dry_run: bool = False) -> int:
        """Delete records created before ``before`` (oldest first); returns how many."""
        total = 0
        for row in self._walk(0, newest_first=False):
            if row.created_at >= before:
                break
            total += 1
            if dry_run:
                continue
            self.r.zremrangebyscore(self.k("logs"), row.id, row.id)
            if row.job_id:
                self.r.zrem(self.k("joblogs", row.job_id), row.id)
                self.r.hincrby(self.k("logbytes"), row.job_id, -len(row.message.encode()))
        return total
