"""Writes by hand on Redis: retry now, cancel, discard (one script per chunk), bulk by filter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from runner.errors import InvalidAction
from runner.store.batches import cancel_reason
from runner.store.redis.codec import arg, token
from runner.store.redis.job_index import JobIndex
from runner.store.rows import JobFilter, JobRow
from runner.store.states import CANCELLABLE, DISCARDABLE, RETRYABLE


class RedisControl(JobIndex):
    """:class:`runner.store.bulk_control.ControlStore` on Redis."""

    def count_for_bulk(self, filters: JobFilter, states: Sequence[str]) -> tuple[int, int]:
        count, top = 0, 0
        for rowid, _ in self._bulk_rows(filters, states, newest_first=True):
            count += 1
            top = max(top, rowid)
        return count, top

    def _bulk_rows(self, filters: JobFilter, states: Sequence[str], *,
                   newest_first: bool) -> Iterator[tuple[int, JobRow]]:
        yield from self._rows(filters, newest_first=newest_first, states=states)

    def run_bulk(self, verb: str, filters: JobFilter, states: Sequence[str], *, up_to_rowid: int,
                 now: float, chunk: int = 500, by: str | None = None) -> int:
        ids = [row.id for rowid, row in self._bulk_rows(filters, states, newest_first=False)
               if rowid <= up_to_rowid]
        reason = cancel_reason(by) if verb == "cancel" else ""
        total = 0
        for start in range(0, len(ids), chunk):
            total += len(self.by_hand(verb, ids[start:start + chunk], states, now=now,
                                      up_to_rowid=up_to_rowid, reason=reason))
        return total

    def by_hand(self, verb: str, job_ids: Sequence[str], states: Sequence[str], *,
                now: float, up_to_rowid: int = 0, reason: str = "") -> list[int]:
        """Retry now, cancel or discard the jobs among ``job_ids`` in ``states``; their rowids.
        ``reason`` replaces the verb's "... by hand"."""
        changed: list[int] = []
        for start in range(0, len(job_ids), 500):
            chunk = job_ids[start:start + 500]
            rows = self.run("by_hand", verb, arg(float(now)), int(up_to_rowid), reason,
                            len(states), *(str(s) for s in states), *chunk)
            changed += [int(r) for r in rows]  # type: ignore[union-attr]
        return changed

    def count_failure_group(self, error_type: str | None,
                            messages: Sequence[str | None]) -> tuple[int, int, float | None]:
        self._index_failures()
        top = int(self.r.get(self.k("rowid")) or 0)  # every job written so far
        pipe = self.r.pipeline(transaction=False)
        for message in messages:
            key = self.k("fgroup", self._failure_group(error_type, message))
            pipe.zcard(key)
            pipe.zrange(key, -1, -1, withscores=True)
        replies = pipe.execute()
        count = sum(replies[0::2])
        lasts = [newest[0][1] for newest in replies[1::2] if newest]
        return count, top, max(lasts, default=None)

    def run_failure_group(self, verb: str, error_type: str | None,
                          messages: Sequence[str | None], *, up_to_rowid: int,
                          failed_until: float | None, now: float, chunk: int = 500) -> int:
        if verb not in ("retry", "discard"):
            raise InvalidAction(f"unknown group action {verb!r}")
        total = 0
        for message in messages:
            group = self._failure_group(error_type, message)
            skip = 0  # jobs of the group read and left alone (added after the count)
            while True:
                changed, read = self.run(  # type: ignore[misc]
                    "failure_group_step", verb, arg(float(now)), int(up_to_rowid),
                    arg(float(failed_until or 0.0)), group, skip, int(chunk))
                total += int(changed)
                skip += int(read) - int(changed)
                if int(read) < chunk:
                    break
        return total

    def retry_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        return len(self.by_hand("retry", job_ids, RETRYABLE, now=now))

    def cancel_jobs(self, job_ids: Sequence[str], *, now: float, by: str | None = None) -> int:
        return len(self.by_hand("cancel", job_ids, CANCELLABLE, now=now,
                                reason=cancel_reason(by)))

    def discard_jobs(self, job_ids: Sequence[str], *, now: float) -> int:
        return len(self.by_hand("discard", job_ids, DISCARDABLE, now=now))

    def redispatch_event(self, event_id: str, dispatch_job: str, *, now: float) -> None:
        try:
            self.run("redispatch_event", event_id, dispatch_job, arg(float(now)), token())
        except InvalidAction as exc:
            if str(exc) == "gone":
                raise InvalidAction(f"event {event_id}: its dispatch job is gone (pruned); "
                                    "replay it with `python -m runner events replay`") from None
            raise InvalidAction(f"event {event_id} is being dispatched now ({exc})") from None
