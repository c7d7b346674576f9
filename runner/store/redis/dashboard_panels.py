"""The dashboard's panels on Redis, read from the kept counts and sets.

Pages of jobs are keyset pages in insertion order (the rowid, which is
creation order here): a page is a range of the ``jobs`` or ``state:<s>`` set
from the key on. The ranked sorts (duration, attempts) rank the newest
:data:`~runner.store.views.SORT_WINDOW` matches.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from runner.store.redis.codec import decoded, number, text
from runner.store.redis.job_index import JobIndex, Partial
from runner.store.rows import JobFilter, JobRow
from runner.store.states import JobState, WorkerState
from runner.store.views import (
    RECENT_SAMPLE,
    SORT_WINDOW,
    SUMMARY_DEAD_LIMIT,
    JobPage,
    PageKey,
    RunTimes,
    Summary,
    WorkerLoad,
    check_sort,
    run_times,
    worker_loads,
)

#: What ranking a job by run time or attempts reads of its hash, with what the filters
#: left to check after the index walk look at (state, queue, task, event, worker).
_RANK_FIELDS = ("id", "state", "queue", "task", "event_id", "lease_owner", "attempt",
                "started_at", "finished_at")
#: Read too for a text filter (what it searches).
_TEXT_FIELDS = ("args", "error_message")
#: Read too for an exact error filter.
_ERROR_FIELDS = ("error_type", "error_message")


class RedisDashboard(JobIndex):
    """:class:`runner.store.dashboard_panels.DashboardStore` on Redis."""

    def summary(self, now: float | None = None,
                rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None, *,
                done_last_minute: int | None = None, stale_after: float = 15.0,
                dead_limit: int = SUMMARY_DEAD_LIMIT, gone: Sequence[str] = ()) -> Summary:
        at = time.time() if now is None else now
        counts = self.counts_by_state()
        executing = counts[JobState.EXECUTING.value]
        stalled = self.stalled_count(at, stale_after, gone) if executing else 0
        oldest = min((o for _, o in self.queue_oldest(at) if o is not None), default=None)
        completed, failed = rates if rates is not None else self.throughput(at, minutes=60)
        done, errors = sum(completed), sum(failed)
        if done_last_minute is None:
            done_last_minute = int(self.r.zcount(self.k("fin", JobState.COMPLETED.value),
                                                 f"({at - 60}", "+inf"))
        return Summary(
            at=at, waiting=counts[JobState.AVAILABLE.value], running=executing - stalled,
            scheduled=counts[JobState.SCHEDULED.value],
            retrying=counts[JobState.RETRYING.value],
            dead=min(counts[JobState.DEAD.value], dead_limit),
            completed_per_minute=float(done_last_minute),
            error_rate=errors / (done + errors) if done + errors else None,
            oldest_waiting_age=None if oldest is None else max(0.0, at - oldest),
            stalled=stalled, dead_capped=counts[JobState.DEAD.value] > dead_limit)

    def live_worker_ids(self, now: float, stale_after: float) -> frozenset[str]:
        owners = decoded(self.r.zrangebyscore(self.k("workers"), now - stale_after, "+inf"))
        states = self._worker_states(owners)
        return frozenset(o for o, s in zip(owners, states, strict=True)
                         if s == WorkerState.RUNNING.value)

    def stalled_count(self, now: float, stale_after: float, gone: Sequence[str] = ()) -> int:
        live = self.live_worker_ids(now, stale_after).difference(gone)
        ids = decoded(self.r.zrange(self.k("state", JobState.EXECUTING.value), 0, -1))
        return sum(1 for owner, expires in self._fields(ids, "lease_owner", "lease_expires_at")
                   if owner is None or text(owner) not in live or (number(expires) or 0) < now)

    def throughput(self, now: float | None = None, *,
                   minutes: int = 60) -> tuple[tuple[int, ...], tuple[int, ...]]:
        at = time.time() if now is None else now
        end = (int(at) // 60 + 1) * 60
        start = end - minutes * 60
        completed, failed = [0] * minutes, [0] * minutes
        for _, finished in self._finished(start):
            index = int((finished - start) // 60)
            if 0 <= index < minutes:
                completed[index] += 1
        for _, failed_at in self._failures(start):
            index = int((failed_at - start) // 60)
            if 0 <= index < minutes:
                failed[index] += 1
        return tuple(completed), tuple(failed)

    def recent_run_times(self, *, sample: int = RECENT_SAMPLE
                         ) -> tuple[RunTimes, dict[str, RunTimes]]:
        newest = [(m.decode(), s) for m, s in self.r.zrevrange(
            self.k("fin", JobState.COMPLETED.value), 0, sample - 1, withscores=True)]
        fields = self._fields([i for i, _ in newest], "queue", "started_at")
        rows = [(text(q) or "", finished, None if number(s) is None else finished - number(s))
                for (_, finished), (q, s) in zip(newest, fields, strict=True)]
        return run_times(rows)

    def worker_loads(self, *, include_stopped: bool = False) -> list[WorkerLoad]:
        return worker_loads(self.running_jobs(),
                            self.list_workers(include_stopped=include_stopped))

    # -- pages of jobs -----------------------------------------------------------------------

    def keyset_page(self, filters: JobFilter | None = None, *, limit: int = 100,
                    after: PageKey | None = None, oldest_first: bool = False,
                    sort: str = "newest", now: float | None = None) -> JobPage:
        check_sort(sort)
        if sort in ("duration", "attempts"):
            return self._ranked_page(filters, limit=limit, after=after, sort=sort, now=now)
        oldest_first = oldest_first or sort == "oldest"
        found: list[tuple[int, JobRow]] = []
        for rowid, row in self._rows(filters, newest_first=not oldest_first,
                                     after=None if after is None else after.rowid,
                                     first=limit + 1):
            found.append((rowid, row))
            if len(found) > limit:
                break
        jobs = [row for _, row in found[:limit]]
        if len(found) <= limit:
            return JobPage(jobs, None)
        rowid, last = found[limit - 1]
        return JobPage(jobs, PageKey(last.created_at, rowid))

    def _ranked_page(self, filters: JobFilter | None, *, limit: int, after: PageKey | None,
                     sort: str, now: float | None) -> JobPage:
        at = time.time() if now is None else now
        # The window is read a few fields a job (what the filter and the rank look at), in
        # a script call a chunk, and only the page's rows whole: a whole row each of the
        # window cost the client about as much as the rest of the refresh together.
        fields = [*_RANK_FIELDS, *(_TEXT_FIELDS if filters and filters.text else ()),
                  *(_ERROR_FIELDS if filters and (filters.error is not None
                                                  or filters.error_text) else ())]
        window: list[tuple[int, Partial]] = []
        for pair in self._rows(filters, fields=fields):
            window.append(pair)  # type: ignore[arg-type]
            if len(window) >= SORT_WINDOW:
                break

        def order(pair: tuple[int, Partial]) -> tuple[bool, float, int]:
            rowid, row = pair
            rank: float | None
            started = None if row.started_at is None else float(row.started_at)
            finished = None if row.finished_at is None else float(row.finished_at)
            if sort == "attempts":
                rank = float(row.attempt or 0)
            elif row.state == JobState.EXECUTING and started is not None:
                rank = at - started
            elif started is None or finished is None or finished < started:
                rank = None  # no duration (JobRow.duration)
            else:
                rank = finished - started
            return rank is None, -(rank or 0.0), -rowid

        ranked = sorted(window, key=order)
        offset = after.rowid if after is not None else 0
        page = ranked[offset:offset + limit + 1]
        more = len(page) > limit
        return JobPage(self._whole_rows([row.id for _, row in page[:limit]]),
                       PageKey(0.0, offset + limit) if more else None)

    def page_key_at(self, at: float, filters: JobFilter | None = None, *,
                    oldest_first: bool = False) -> PageKey:
        key = self.k("jobs")
        self._settle()
        low, high = 0, int(self.r.zcard(key)) - 1
        if high < 0:
            return PageKey(at, 0)
        found = 0  # the last rowid created at or before ``at``
        while low <= high:
            middle = (low + high) // 2
            [(member, rowid)] = self.r.zrange(key, middle, middle, withscores=True)
            created = number(self.r.hget(self.k("job", member.decode()), "created_at"))
            if created is None or created > at:
                high = middle - 1
            else:
                found = max(found, int(rowid))
                low = middle + 1
        return PageKey(at, found + 1 if not oldest_first else found)
