"""Writing a SQLite jobs file into Redis (``migrate-to redis://...``), as
:class:`runner.store.sqlite.export.FileExport` reads it.

Each part goes through one function of :mod:`.lua_transfer` a batch at a time, and
each function writes only what Redis does not hold, so a copy interrupted half way,
or run again, leaves everything once. Counters are the file's: Redis's own
per-task histogram buckets are not cumulative, so the file's ``le<i>`` are taken
apart here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from runner.store.redis import RedisStore
from runner.store.redis.codec import NULL, US, Arg
from runner.store.sqlite.export import (
    ERROR_COLUMNS,
    EVENT_COLUMNS,
    JOB_COLUMNS,
    LOG_COLUMNS,
    PAUSE_COLUMNS,
    RUN_COLUMNS,
    SCHEDULE_COLUMNS,
    TOTAL_COLUMNS,
    FileExport,
    TransferReport,
    digest,
)
from runner.store.states import JobState

#: Job columns that are not fields of a job's hash: the payload has a key of its own,
#: a copied job holds no lease, and a claim on Redis parks held-back jobs itself.
_NOT_FIELDS = {"data", "lease_owner", "lease_expires_at", "parked"}
_DATA = JOB_COLUMNS.index("data")
_ID = JOB_COLUMNS.index("id")
_BUCKETS = [c for c in TOTAL_COLUMNS if c.startswith("le")]
#: Bytes of jobs one call writes at most (beyond the one job that passes it).
_CALL_BYTES = 4 << 20


def _text(value: object) -> str:
    """A value as the scripts store it: floats exactly, as the client writes them."""
    return repr(value) if isinstance(value, float) else str(value)


def _fields(columns: Sequence[str], row: tuple, skip: Iterable[str] = ()) -> str:
    left_out = set(skip)
    return json.dumps({c: _text(v) for c, v in zip(columns, row, strict=True)
                       if v is not None and c not in left_out})


def copied_from(store: RedisStore) -> str | None:
    """The file Redis holds a copy of (None: none was copied here)."""
    value = store.r.hget(store.k("copied"), "source")
    return None if value is None else value.decode()


def read_before_pruning(store: RedisStore) -> tuple[int, int]:
    """The rowids of jobs and events in the file a copy reads past: how far copies had read
    when retention last forgot ids they wrote (see :mod:`.lua_transfer`)."""
    jobs, events = store.r.hmget(store.k("copied"), "jobs_upto", "events_upto")
    return int(jobs or 0), int(events or 0)


def record_source(store: RedisStore, source: str) -> None:
    """Record ``source`` as the file copied here; another file's marks go (its log and
    counter marks say nothing of this one)."""
    if copied_from(store) != source:
        store.r.delete(store.k("copied"))
        store.r.hset(store.k("copied"), "source", source)


def _error_args(errors: Sequence[tuple]) -> list[Arg]:
    out: list[Arg] = [len(errors)]
    for e in errors:
        row = dict(zip(ERROR_COLUMNS, e, strict=True))
        out += [row["attempt"], repr(float(row["failed_at"])), json.dumps(
            [row["attempt"], row["kind"], row["error_type"], row["message"],
             row["traceback"], row["worker"], row["started_at"], row["failed_at"]])]
    return out


def _copy_jobs(export: FileExport, store: RedisStore, report: TransferReport) -> None:
    for rows in export.jobs():
        ids = [r[_ID] for r in rows]
        errors = export.errors_of(ids)
        for job_id in ids:  # a crash the copy charged is the job's last failed attempt
            if job_id in export.crashes:
                errors.setdefault(job_id, []).append(export.crashes[job_id])
        report.read["errors"] = report.read.get("errors", 0) + sum(map(len, errors.values()))
        flat: list[Arg] = []
        size = count = 0
        for n, row in enumerate(rows, 1):
            args = [_fields(JOB_COLUMNS, row, _NOT_FIELDS), row[_DATA],
                    " ".join(_counted(export, row[_ID])),
                    *_error_args(errors.get(row[_ID], ()))]
            flat += args
            size += sum(len(a) for a in args if isinstance(a, (bytes, str)))
            count += 1
            # Redis runs a function alone: a call of large payloads would hold it long
            if size >= _CALL_BYTES or n == len(rows):
                jobs, failures = store.run("copy_jobs", repr(time.time()),  # type: ignore[misc]
                                           export.rowids[n - 1], count, *flat)
                _count(report, "jobs", count, jobs)
                report.written["errors"] = report.written.get("errors", 0) + int(failures)
                flat, size, count = [], 0, 0


def _counted(export: FileExport, job_id: str) -> list[str]:
    """The counters a job adds as it arrives: the outcome and the crash the copy gave it
    (the file's totals hold neither)."""
    outcome = export.settled.get(job_id)
    counted = [] if outcome is None else [outcome]
    return [*counted, "failed"] if job_id in export.crashes else counted


def _count(report: TransferReport, name: str, read: int, written: object) -> None:
    report.read[name] = report.read.get(name, 0) + read
    report.written[name] = report.written.get(name, 0) + int(written)  # type: ignore[call-overload]


def _copy_rows(export: FileExport, store: RedisStore, report: TransferReport) -> None:
    """Results, schedules, fired slots, events and pauses."""
    for rows in export.results():
        flat: list[Arg] = [len(rows)]
        for key, value, expires in rows:
            flat += [key, value, NULL if expires is None else repr(float(expires))]
        _count(report, "results", len(rows), store.run("copy_results", *flat))
    for rows in export.schedules():
        _count(report, "schedules", len(rows), store.run(
            "copy_schedules", len(rows), *(_fields(SCHEDULE_COLUMNS, r) for r in rows)))
    for rows in export.schedule_runs():
        flat = [len(rows)]
        for r in rows:
            run = dict(zip(RUN_COLUMNS, r, strict=True))
            slot, fired = repr(float(run["slot"])), repr(float(run["fired_at"]))
            # the fields a firing and a manual run on Redis write for the same slot
            field = f"1:{slot}:{run['job_id']}" if run["manual"] else f"0:{slot}"
            flat += [run["schedule"], field, json.dumps(
                [slot, bool(run["manual"]), fired, run["job_id"], run["outcome"]]), fired]
        _count(report, "schedule runs", len(rows), store.run("copy_runs", *flat))
    for rows in export.events():
        _count(report, "events", len(rows), store.run(
            "copy_events", export.rowids[-1], len(rows),
            *(_fields(EVENT_COLUMNS, r) for r in rows)))
    for rows in export.pauses():
        flat = [len(rows)]
        for r in rows:
            p = dict(zip(PAUSE_COLUMNS, r, strict=True))
            by = NULL.decode() if p["changed_by"] is None else p["changed_by"]
            flat += [f"{p['kind']}{US}{p['name']}",
                     f"{int(p['paused'])}{US}{repr(float(p['changed_at']))}{US}{by}"]
        _count(report, "pauses", len(rows), store.run("copy_pauses", *flat))


def _copy_revocations(export: FileExport, store: RedisStore, report: TransferReport) -> None:
    for rows in export.revocations():
        flat: list[Arg] = [len(rows)]
        for key, value in rows:
            flat += [key, value, digest(value)]
        _count(report, "revocations", len(rows), store.run("copy_revocations", *flat))


def _copy_logs(export: FileExport, store: RedisStore, report: TransferReport) -> None:
    mark = store.r.hget(store.k("copied"), "log")
    _count(report, "logs", 0, 0)  # listed when none is new since the last copy
    for rows in export.logs(int(mark or 0)):
        flat: list[Arg] = [len(rows)]
        for r in rows:
            log = dict(zip(LOG_COLUMNS, r, strict=True))
            flat += [log["id"], NULL if log["job_id"] is None else log["job_id"],
                     len(log["message"].encode()), json.dumps(
                         [log["created_at"], log["level"], log["logger"], log["message"],
                          log["job_id"], log["task"], log["worker"]])]
        _count(report, "logs", len(rows), store.run("copy_logs", *flat))


def _totals_fields(values: dict[str, Any]) -> list[tuple[str, str]]:
    """A file's counters of one task and queue as the fields of Redis's ``totals``."""
    out = [(what, str(values[what])) for what in ("enqueued", "failed", "retried",
                                                  JobState.DEAD.value,
                                                  JobState.CANCELLED.value)]
    out.append(("duration", repr(float(values["duration_sum"]))))
    below = 0
    for i, column in enumerate(_BUCKETS):
        out.append((f"b{i}", str(int(values[column]) - below)))
        below = int(values[column])
    # Redis's last bucket holds the completions past every bound
    out.append((f"b{len(_BUCKETS)}", str(int(values[JobState.COMPLETED.value]) - below)))
    return out


def _copy_counters(export: FileExport, store: RedisStore, report: TransferReport) -> None:
    totals = export.totals()
    if totals:
        grew = 0
        for task, queue, *counts in totals:
            fields = _totals_fields(dict(zip(TOTAL_COLUMNS, counts, strict=True)))
            flat = [x for what, value in fields for x in (f"{task}{US}{queue}{US}{what}", value)]
            grew += int(store.run("copy_counters", "totals", len(fields), *flat))  # type: ignore[call-overload]
        report.read["counters"], report.written["counters"] = len(totals), grew
    queues = export.queue_totals()
    if queues:
        grew = 0
        for queue, rejected, dropped in queues:
            grew += int(store.run("copy_counters", "backpressure", 2,  # type: ignore[call-overload]
                                  f"{queue}{US}rejected", str(rejected),
                                  f"{queue}{US}dropped", str(dropped)))
        report.read["queue counters"], report.written["queue counters"] = len(queues), grew


def copy_from_sqlite(export: FileExport, store: RedisStore) -> TransferReport:
    """Copy what ``export`` reads of the file, each part unless Redis holds it."""
    report = TransferReport()
    # before the jobs: a worker already on Redis never claims one ahead of its revocation
    _copy_revocations(export, store, report)
    _copy_jobs(export, store, report)
    _copy_rows(export, store, report)
    _copy_logs(export, store, report)
    _copy_counters(export, store, report)
    return report
