"""Retention, upkeep and integrity on Redis.

Memory is given back as keys are deleted, so there is nothing to vacuum and no
local disk to watch; SQLite's file upkeep (vacuum, WAL checkpoints) is not kept.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path

import redis

from runner.errors import DatabaseCorrupt, DatabaseUnavailable, DiskFull
from runner.flow import turn_key
from runner.service_sections import RetentionSection
from runner.store.batches import prune_jobs_in_batches
from runner.store.redis.connection import RedisBase
from runner.store.redis.url import nothing_under
from runner.store.rows import PruneReport
from runner.store.states import JobState

#: Every feature's data exists on Redis from the start (``has_table`` says yes to these).
TABLES = {"runner_job", "runner_job_error", "runner_kv", "runner_log", "runner_event",
          "runner_schedule", "runner_schedule_run", "runner_worker", "runner_meta",
          "runner_queue", "runner_counter", "runner_lease"}

#: The key that marks a prefix as holding a jobs database: written (``created_at``) by the
#: first store opened to write under it (a worker, a producer), read by readers, which
#: write nothing.
MARK = "meta"
#: Keys one of which an earlier release's writers always left (it wrote no mark): the
#: job id sequence, the quick enqueue's inbox, the workers, the totals, events, schedules.
WRITTEN = ("rowid", "inbox", "workers", "totals", "jobs", "events", "schedules", "kv")

DAY = 86400.0
_TURN = turn_key("")
#: Seconds the integrity check waits for a PING (a worker's start, health).
CHECK_WAIT = 5.0


class RedisUpkeep(RedisBase):
    """:class:`runner.store.upkeep.UpkeepStore` on Redis."""

    #: The prefix was found (or made) a jobs database by this handle.
    _holds_jobs = False

    def enable_space_reclaim(self, *, me: str | None = None) -> str | None:
        return None  # Redis frees a key's memory when it is deleted

    def space_reclaim_note(self) -> str | None:
        return None

    def vacuum(self, *, force: bool = False) -> str:
        return (f"{self.location}: nothing to vacuum (Redis gives memory back as retention "
                "deletes keys)")

    def data_dir(self) -> Path | None:
        return None  # the data is not on this host's disk

    def probe_write(self, size: int, *, deadline: float, commit: bool = False) -> None:
        key = self.k("probe")
        try:
            self.r.set(key, b"\0" * size, px=max(1, int(deadline * 1000)))
            self.r.delete(key)
        except redis.ResponseError as exc:
            if "OOM" in str(exc):
                raise DiskFull(f"{self.location}: Redis is out of memory ({exc})") from None
            raise

    def integrity_problem(self, *, full_check_below: int) -> str | None:
        # Redis keeps no pages of ours to check: a PING that answers is the check. One that
        # does not says the server is away or is not Redis, never that the data is damaged
        # (a worker's start then waits for the server, as on PostgreSQL).
        self.reach(CHECK_WAIT)
        return None

    def verify(self) -> None:
        result = self.quick_check()
        if result != "ok":
            raise DatabaseUnavailable(f"{self.location}: {result}")
        if not self.holds_jobs_database():
            # As a PostgreSQL database without the jobs tables: a wrong prefix reads as an
            # empty jobs database otherwise.
            raise DatabaseCorrupt(f"{self.location}: no jobs database here; "
                                  f"{nothing_under(self.prefix)}")

    def has_table(self, name: str) -> bool:
        """Every table from the start, once the prefix holds a jobs database; none before."""
        return name in TABLES and self.holds_jobs_database()

    def mark_jobs_database(self) -> None:
        """Mark the prefix as holding a jobs database (a store opened to write).

        Best effort: a server that does not answer now fails the first real write as it
        would have, and that write leaves keys :meth:`holds_jobs_database` finds anyway.
        """
        try:
            self.r.hsetnx(self.k(MARK), "created_at", repr(time.time()))
        except redis.RedisError:
            return
        self._holds_jobs = True

    def holds_jobs_database(self) -> bool:
        """True when a writer has opened the prefix (or written under it, before the mark
        existed); a prefix nothing was written under (mistyped, no worker yet) is none.
        Once true it is not asked again (one EXISTS per handle)."""
        if self._holds_jobs:
            return True
        found = bool(self.r.exists(self.k(MARK), *(self.k(key) for key in WRITTEN)))
        self._holds_jobs = found
        return found

    def quick_check(self) -> str:
        try:
            return "ok" if self.r.ping() else "no answer from Redis"
        except redis.RedisError as exc:  # a check reports, it does not raise
            return f"Redis: {exc}"

    def prune_retention(self, section: RetentionSection, *, now: float | None = None,
                        dry_run: bool = False,
                        keep_queues: Collection[str] = ()) -> PruneReport:
        at = time.time() if now is None else now
        report = PruneReport()
        report.forgotten_queues = self._forget_idle_queues(keep_queues, section.batch_size,
                                                           dry_run=dry_run)
        completed_before = at - section.completed_days * DAY
        dead_before = at - section.dead_days * DAY
        log_cut = at - section.logs_days * DAY
        workers_cut = at - section.workers_days * DAY
        if dry_run:
            report.deleted["jobs"] = sum(
                int(self.r.zcount(self.k("fin", s), "-inf", f"({cut}"))
                for s, cut in ((JobState.COMPLETED.value, completed_before),
                               (JobState.CANCELLED.value, completed_before),
                               (JobState.DEAD.value, dead_before)))
            report.deleted["logs"] = self.prune_logs(log_cut, dry_run=True)
            report.deleted["events"] = self.prune_events(section.events_days, now=at,
                                                         dry_run=True)
            report.deleted["workers"] = len(self._stopped_workers(workers_cut))
            return report
        size = section.batch_size
        jobs, job_logs = prune_jobs_in_batches(lambda: self.run(  # type: ignore[arg-type,return-value]
            "prune_jobs", repr(float(completed_before)), repr(float(dead_before)), size), size)
        # The failed-attempt index outlives no job it could describe.
        self.r.zremrangebyscore(self.k("failed"), "-inf",
                                f"({min(completed_before, dead_before)}")
        report.deleted["jobs"] = jobs
        report.deleted["logs"] = job_logs + self.prune_logs(log_cut, batch=size)
        report.deleted["events"] = self.prune_events(section.events_days, now=at, batch=size)
        report.deleted["workers"] = self._prune_stopped_workers(workers_cut)
        return report

    def _forget_idle_queues(self, keep: Collection[str], batch: int, *,
                            dry_run: bool) -> int:
        """Drop the share turn of each queue with no job that ``keep`` does not name,
        ``batch`` names to a script; how many queues were forgotten (dry: would be)."""
        self._settle()  # the quick enqueue's jobs are in their queues' indexes first
        names = sorted({field.decode()[len(_TURN):] for field, _ in self.r.hscan_iter(
            self.k("flow"), match=_TURN + "*", count=1000)} - set(keep))
        return sum(int(self.run("forget_idle_queues", int(dry_run),  # type: ignore[arg-type]
                                *names[start:start + batch]))
                   for start in range(0, len(names), batch))

    def _stopped_workers(self, before: float) -> list[bytes]:
        """Workers not running whose last heartbeat is before ``before``."""
        old = self.r.zrangebyscore(self.k("workers"), "-inf", f"({before}")
        return [owner for owner in old
                if self.r.hget(self.k("worker", owner.decode()), "state") != b"running"]

    def _prune_stopped_workers(self, before: float) -> int:
        gone = self._stopped_workers(before)
        for owner in gone:
            self.r.delete(self.k("worker", owner.decode()))
            self.r.zrem(self.k("workers"), owner)
        return len(gone)
