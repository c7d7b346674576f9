"""Operations commands: logs, stats, metrics, health, prune, vacuum."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from runner.cli import checks
from runner.cli.format import age, cpu, memory, table, when
from runner.cli.jobs import worker_state
from runner.errors import ConfigError, DatabaseError
from runner.printable import block, one_line, split_traceback
from runner.readmodel import metrics
from runner.readmodel.health import check, heartbeat_limit
from runner.readmodel.prometheus import render_database
from runner.readmodel.scrape import build_info, read_database
from runner.store.factory import driver_errors, is_driver_bug
from runner.store.rows import LogFilter, parse_level, short_id
from runner.store.states import JobState


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="log lines stored by workers, per job or all")
    p.add_argument("--job", metavar="ID", help="only lines emitted inside this job")
    p.add_argument("--task", help="only lines of jobs of this task")
    p.add_argument("--level", default="", help="lowest level: DEBUG, INFO, WARNING, ERROR")
    p.add_argument("--worker-only", action="store_true", help="only the workers' own lines")
    p.add_argument("--limit", type=int, default=200, help="lines shown at first (default 200)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("stats", help="throughput, latency, errors and backlog per task/queue")
    p.add_argument("--window", type=float, default=60, metavar="MINUTES",
                   help="minutes looked back (default 60)")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("metrics", help="the database-wide metrics in Prometheus text format")
    p.add_argument("--textfile", metavar="PATH",
                   help="write them to PATH atomically (node_exporter's textfile collector)")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("health", help="exit 0 when healthy, else 1 with the reason")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("prune", help="apply [retention] now: delete old rows, vacuum, checkpoint")
    p.add_argument("--dry-run", action="store_true", help="only count what would go")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("vacuum", help="rewrite the database once so that pruning gives space "
                       "back (files made by older versions)")
    p.add_argument("--force", action="store_true",
                   help="run even while workers are running (they wait for it)")
    p.set_defaults(func=cmd_vacuum)


def cmd_logs(args: argparse.Namespace, ctx: Any) -> int:
    limit = checks.limit("--limit", args.limit)
    try:
        level = parse_level(args.level) if args.level else 0
    except ValueError as exc:
        raise ConfigError(f"--level: {exc}") from None
    job_id = None
    if args.job:
        job_id = ctx.store.get_job(args.job).id
    filters = LogFilter(job_id=job_id, task=args.task, level=level, worker_only=args.worker_only)
    rows = ctx.store.read_logs(filters, limit=limit)
    last = _print_logs(rows, show_job=job_id is None)
    while args.follow:
        time.sleep(args.interval)
        rows = ctx.store.read_logs(filters, after_id=last, limit=1000)
        last = _print_logs(rows, show_job=job_id is None) or last
    return 0


def _print_logs(rows: list, show_job: bool) -> int:  # noqa: ANN001
    import logging

    for r in rows:
        who = f" [{r.task} {short_id(r.job_id)}]" if show_job and r.job_id else ""
        # One line per record, as in worker.log; its traceback follows, indented.
        message, trace = split_traceback(r.message)
        print(one_line(f"{when(r.created_at)} {logging.getLevelName(r.level):<7} "
                       f"{r.logger}{who}: {message}"))
        if trace.strip():
            print(block(trace))
    sys.stdout.flush()
    return rows[-1].id if rows else 0


def _rate(values: tuple[int, ...]) -> str:
    return f"{sum(values[-5:]) / 5:.1f}"


def _durations(marks: tuple[float, float, float] | None) -> list[str]:
    return ["-"] * 3 if marks is None else [age(m) for m in marks]


def cmd_stats(args: argparse.Namespace, ctx: Any) -> int:
    snap = metrics.collect(ctx.store, window=args.window * 60)
    minutes = int(args.window)
    print("jobs by state: " + ", ".join(f"{k} {v}" for k, v in snap.states.items()))
    print(f"\nper queue (last {minutes} min; rate = completed/min over the last 5 min):")
    # WAITING is ready now, as in `queues` and on the dashboard; due later is SCHEDULED
    print(table(["QUEUE", "WAITING", "SCHEDULED", "RUNNING", "RETRYING", "DEAD", "OLDEST WAIT",
                 "DONE", "FAILED", "RATE", "ERR%", "P50", "P95", "P99"],
                [(q.queue, q.states[JobState.AVAILABLE], q.states[JobState.SCHEDULED],
                  q.states[JobState.EXECUTING], q.states[JobState.RETRYING],
                  q.states[JobState.DEAD], age(q.oldest_waiting_age),
                  q.stats.completed, q.stats.failed, _rate(q.stats.completed_per_minute),
                  _percent(q.stats.error_rate), *_durations(q.stats.durations))
                 for q in snap.queues]))
    print(f"\nper task (last {minutes} min):")
    print(table(["TASK", "QUEUE", "DONE", "FAILED", "RETRIES", "DIED", "DEAD", "RATE", "ERR%",
                 "P50", "P95", "P99"],
                [(t.task, t.queue, t.stats.completed, t.stats.failed, t.stats.retries,
                  t.stats.died, t.dead, _rate(t.stats.completed_per_minute),
                  _percent(t.stats.error_rate), *_durations(t.stats.durations))
                 for t in snap.tasks]))
    if snap.schedule_lags is not None:
        print("\nschedules (lag of the due fire):")
        print(table(["SCHEDULE", "LAG"], [(n, age(v)) for n, v in snap.schedule_lags.items()]))
    print("\nworkers:")
    # As `workers` says it: a dead or silent worker's last heartbeat counts no job running.
    stale_after = heartbeat_limit(ctx.settings, ctx.settings.health)
    node = ctx.settings.runner.node_name or None
    rows = []
    for w in snap.workers:
        state = worker_state(w.id, "running", w.heartbeat_age, stale_after, node)
        rows.append((w.id, state, f"{age(w.heartbeat_age)} ago",
                     f"{w.running}/{w.concurrency}" if state == "running" else "-",
                     memory(w.rss_bytes), cpu(w.cpu_percent), w.status or "-"))
    print(table(["WORKER", "STATE", "HEARTBEAT", "RUNNING", "RSS", "CPU", "STATUS"], rows))
    return 0


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}"


def cmd_metrics(args: argparse.Namespace, ctx: Any) -> int:
    from runner.readmodel.health import heartbeat_limit

    limit = heartbeat_limit(ctx.settings, ctx.settings.health)
    text = render_database(read_database(ctx.store, heartbeat_limit=limit), build_info())
    if not args.textfile:
        sys.stdout.write(text)
        return 0
    target = Path(args.textfile)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o644)  # node_exporter runs as another user
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"--textfile {target}: {exc.strerror or exc}") from None
    return 0


def cmd_health(args: argparse.Namespace, ctx: Any) -> int:
    # A probe reads 0 or 1: a database it cannot reach is unhealthy, not an error exit.
    try:
        return _health(ctx)
    except DatabaseError as exc:
        print(one_line(f"unhealthy: database: {exc}"))
        return 1
    except driver_errors() as exc:
        # What the server said past the first look (a connection lost meanwhile); a
        # wrong statement is a bug, not the database's state.
        if is_driver_bug(exc):
            raise
        print(one_line(f"unhealthy: database: {ctx.database_shown}: {exc}"))
        return 1


def _health(ctx: Any) -> int:
    if not ctx.database_exists():
        print(f"unhealthy: database: {ctx.database_missing}, with {ctx.settings_used}; "
              "no worker has run with these settings")
        return 1
    report = check(ctx.store, ctx.settings)
    print(one_line(report.reason if report.ok else f"unhealthy: {report.reason}"))
    return 0 if report.ok else 1


def cmd_prune(args: argparse.Namespace, ctx: Any) -> int:
    section = ctx.settings.retention
    report = ctx.store.prune_retention(section, dry_run=args.dry_run,
                                       keep_queues=list(ctx.settings.queues))
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb}: " + ", ".join(f"{n} {what}" for what, n in report.deleted.items()))
    if report.forgotten_queues:
        print(f"{'would forget' if args.dry_run else 'forgot'} {report.forgotten_queues} idle "
              "queues (no job left, not in settings): their waiting counts and share turns")
    if not args.dry_run and ctx.store.data_dir() is not None:  # a file on this host
        print(f"vacuumed {report.vacuumed_pages} pages; WAL "
              f"{report.wal_bytes_before / 2**20:.1f} -> {report.wal_bytes_after / 2**20:.1f} MiB"
              + (" (checkpoint blocked by a reader)" if report.checkpoint_busy else ""))
    note = None if report.auto_vacuum else ctx.store.space_reclaim_note()
    if note:
        print(f"note: {note}")
    return 0


def cmd_vacuum(args: argparse.Namespace, ctx: Any) -> int:
    print(ctx.store.vacuum(force=args.force))
    return 0
