"""Job commands: enqueue, jobs, show, retry, discard, cancel, workers, check."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from runner import control as actions
from runner.cli import checks
from runner.cli.format import age, counted, cpu, key_values, memory, progress, table, when
from runner.clock_drift import drift_limit, over_limit, server_age, signed
from runner.errors import (
    ConfigError,
    DatabaseUnavailable,
    InvalidAction,
    SerializationError,
    UnknownTask,
)
from runner.printable import block, one_line
from runner.readmodel.dashboard import live_worker_ids
from runner.readmodel.health import heartbeat_limit
from runner.registry import registered_tasks
from runner.store.owners import worker_gone
from runner.store.rows import JobFilter, short_id
from runner.store.states import JobState
from runner.task import unknown_task_sections

#: What the CLI calls an executing job whose worker is gone, as the dashboard does.
STALLED = "stalled"

#: What ``jobs --state`` takes: a job state, or the groups waiting and failed.
LISTED_STATES = (*(s.value for s in JobState), "waiting", "failed")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enqueue", help="enqueue a job of a registered task")
    p.add_argument("task", help="task name (as in [tasks.NAME]) or module.name")
    p.add_argument("--args", default="[]", metavar="JSON", help="positional arguments (a list)")
    p.add_argument("--kwargs", default="{}", metavar="JSON", help="keyword arguments (an object)")
    p.add_argument("--delay", metavar="SECONDS", help="run no sooner than this")
    p.add_argument("--priority", help="override the task's priority")
    p.set_defaults(func=cmd_enqueue, creates=True)

    p = sub.add_parser("jobs", help="list jobs, newest first")
    p.add_argument("--state", choices=LISTED_STATES, metavar="STATE",
                   help="available, scheduled, executing, retrying, completed, "
                   "dead, cancelled, or waiting/failed")
    p.add_argument("--task", help="only this task")
    p.add_argument("--queue", help="only this queue")
    p.add_argument("--search", help="text in id, task, arguments or error")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("show", help="one job in full, with every failed attempt's traceback")
    p.add_argument("id", help="job id (or a unique prefix)")
    p.set_defaults(func=cmd_show)

    for name, helptext in (("retry", "run dead, cancelled or failed jobs again now"),
                           ("discard", "discard waiting or dead jobs"),
                           ("cancel", "cancel waiting or running jobs")):
        p = sub.add_parser(name, help=f"{helptext}: by id, or every job of a filter")
        p.add_argument("ids", nargs="*", metavar="ID")
        taken = ", ".join(s.value for s in actions.bulk_states(name, None))
        p.add_argument("--state", help=f"only jobs in this state (without it: {taken} jobs)")
        p.add_argument("--task", help="only this task")
        p.add_argument("--queue", help="only this queue")
        p.add_argument("--search", help="text in id, task, arguments or error")
        p.add_argument("--all", action="store_true",
                       help="with no other filter: every job the action applies to")
        p.add_argument("--dry-run", action="store_true", help="count, change nothing")
        p.set_defaults(func=cmd_act, action=name)

    p = sub.add_parser("workers", help="worker processes and their heartbeats")
    p.add_argument("--all", action="store_true", help="include stopped and dead workers")
    p.set_defaults(func=cmd_workers)

    p = sub.add_parser("check", help="validate settings, task imports and the database")
    p.set_defaults(func=cmd_check)


def find_task(ctx: Any, name: str) -> Any:
    """The task wrapper registered under a short or full name."""
    ctx.load_tasks()
    wrapper = ctx.huey.task_registry.find(name)
    if wrapper is None:
        registry = registered_tasks(ctx.huey)
        same = sorted(full for full, w in registry.items() if w.task_name == name)
        if len(same) > 1:
            raise UnknownTask(f"task name '{name}' is used by {', '.join(same)}; give the "
                              "full name")
        known = ", ".join(sorted({w.task_name for w in registry.values()})) or "none"
        raise UnknownTask(f"no task named '{name}' (registered: {known})")
    return wrapper


def cmd_enqueue(args: argparse.Namespace, ctx: Any) -> int:
    delay = checks.delay("--delay", args.delay)
    priority = checks.priority("--priority", args.priority)
    wrapper = find_task(ctx, args.task)
    try:
        positional = json.loads(args.args)
        keywords = json.loads(args.kwargs)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"--args/--kwargs is not valid JSON: {exc}") from None
    if not isinstance(positional, list) or not isinstance(keywords, dict):
        raise SerializationError("--args must be a JSON list and --kwargs a JSON object")
    options: dict[str, Any] = {}
    if delay:
        options["delay"] = delay
    if priority is not None:
        options["priority"] = priority
    result = ctx.huey.enqueue(wrapper.s(*positional, **keywords, **options))
    print(result.id)
    return 0


def cmd_jobs(args: argparse.Namespace, ctx: Any) -> int:
    filters = JobFilter(state=args.state, task=args.task, queue=args.queue, text=args.search)
    rows = ctx.store.list_jobs(filters, limit=checks.limit("--limit", args.limit))
    total = ctx.store.count_jobs(filters)
    now = time.time()
    live = (_live_workers(ctx, now) if any(j.state == JobState.EXECUTING for j in rows)
            else frozenset())
    print(table(
        ["ID", "TASK", "QUEUE", "STATE", "ATTEMPT", "CREATED", "DURATION", "PROGRESS", "ERROR"],
        [(short_id(j.id), j.task, j.queue, _listed_state(j, live),
          j.attempt_text(compact=True), when(j.created_at),
          age(j.listed_duration(now, _listed_state(j, live) == STALLED)),
          progress(j.progress_done, j.progress_total), _cut(j.listed_note, 60)) for j in rows]))
    print(f"({len(rows)} of {counted(total, 'job')})")
    if ctx.store.intake_waiting():
        # The read moved none: another process held the write lock, or this user may not
        # write the file (runner.store.sqlite.transitions.intake).
        print(f"jobs enqueued since the last write to {ctx.store.location} are not listed yet: "
              "a worker, or any command run by a user who may write the file, files them")
    return 0


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, ``…`` saying where it was cut (the
    dashboard's error column, the same text, cuts alike)."""
    return text if len(text) <= width else text[:width - 1] + "…"


def _live_workers(ctx: Any, now: float) -> frozenset[str]:
    """The workers alive now, by the rule of the dashboard, the queue tables and `health`."""
    settings = ctx.settings
    return live_worker_ids(ctx.store, now, heartbeat_limit(settings, settings.health),
                           settings.runner.node_name or None)


def _running_cancel(ctx: Any, job_id: str) -> str:
    """What happens to a running job once its cancel is asked, as the dashboard says it."""
    job = ctx.store.get_job(job_id)
    if _listed_state(job, _live_workers(ctx, time.time())) == STALLED:
        return "; its worker is gone: it ends cancelled once a worker requeues it"
    return "; running: its worker stops it"


def _listed_state(job: Any, live: frozenset[str]) -> str:
    """A job's state as the dashboard's Jobs list says it: an executing job whose worker
    is not alive is stalled (nothing runs it until a worker requeues it)."""
    if job.state == JobState.EXECUTING and job.lease_owner not in live:
        return STALLED
    return job.state


def cmd_show(args: argparse.Namespace, ctx: Any) -> int:
    store = ctx.store
    job = store.get_job(args.id)
    now = time.time()
    stalled = job.state == JobState.EXECUTING and job.lease_owner not in _live_workers(ctx, now)
    held = {(p.kind, p.name) for p in store.list_pauses() if p.paused}
    fields = [
        ("id", job.id),
        ("task", job.task + (" (paused)" if ("task", job.task) in held else "")),
        ("queue", job.queue + (" (paused)" if ("queue", job.queue) in held else "")),
        ("priority", job.priority),
        ("state", f"{STALLED} (executing; its worker is gone)" if stalled else job.state),
        ("reason", job.reason or "-"), ("arguments", job.args or "-"),
        ("attempt", job.attempt_text()),
        ("crashes", job.crashes),
        ("created", when(job.created_at)), ("run at", when(job.run_at)),
        ("started", when(job.started_at)), ("finished", when(job.finished_at)),
        ("duration", age(job.duration)),
        ("running for", age(now - job.started_at) if job.state == JobState.EXECUTING
         and job.started_at and not stalled else "-"),
        ("lease owner", job.lease_owner or "-"),
        ("progress", f"{progress(job.progress_done, job.progress_total)} "
                     f"{job.progress_message or ''}".strip() or "-"),
        ("event", job.event_id or "-"), ("schedule", job.schedule or "-")]
    print(key_values(fields))
    errors = ctx.store.job_errors(job.id)
    if errors:
        print(f"\nfailed attempts ({len(errors)}):")
        for e in errors:
            print(one_line(f"--- attempt {e.attempt} [{e.kind}] at {when(e.failed_at)} on "
                           f"{e.worker or '-'}: {e.error_type}: {e.message}"))
            if e.traceback:
                print(block(e.traceback))
    return 0


def cmd_act(args: argparse.Namespace, ctx: Any) -> int:
    filters = JobFilter(state=args.state, task=args.task, queue=args.queue, text=args.search)
    if args.ids:
        if filters != JobFilter() or args.all or args.dry_run:
            raise InvalidAction(f"{args.action}: give job ids or a filter, not both")
        for job_id in args.ids:
            if args.action == "cancel":
                was = actions.cancel_job(ctx.store, job_id, by=actions.actor("cli"))
                print(f"cancel: {job_id}" + (_running_cancel(ctx, job_id)
                                             if was is JobState.EXECUTING else ""))
                continue
            act = {"retry": actions.retry_job, "discard": actions.discard_job}[args.action]
            act(ctx.store, job_id)
            print(f"{args.action}: {job_id}")
        return 0
    if filters == JobFilter() and not args.all:
        raise InvalidAction(f"{args.action}: give job ids, a filter (--state, --task, --queue, "
                            "--search), or --all for every job it applies to")
    plan = actions.plan_bulk(ctx.store, args.action, filters)
    states = ", ".join(plan.states)
    if args.dry_run:
        print(f"{args.action}: {plan.count} jobs ({states}) match; nothing changed (dry run)")
        return 0
    done = actions.run_bulk(ctx.store, plan, by=actions.actor("cli"))
    print(f"{args.action}: {done} of {plan.count} jobs ({states})"
          + ("" if done == plan.count else "; the others changed state meanwhile")
          + (f"; {len(plan.running)} running: their workers stop them" if plan.running else ""))
    return 0


def cmd_workers(args: argparse.Namespace, ctx: Any) -> int:
    limit = drift_limit(ctx.settings.worker)
    rows = ctx.store.list_workers(include_stopped=args.all)
    # After the read (opening the store takes a while, and a worker may beat meanwhile);
    # a heartbeat still ahead comes from a host whose clock runs ahead: it is fresh.
    now = time.time()
    stale_after = heartbeat_limit(ctx.settings, ctx.settings.health)
    node = ctx.settings.runner.node_name or None
    print(table(["WORKER", "STATE", "HEARTBEAT", "CLOCK", "THREADS", "RUNNING", "RSS", "CPU",
                 "QUEUES"],
                [(w.id, *_liveness(w, now, stale_after, node), _clock(w.clock_offset, limit),
                  w.concurrency, w.running, memory(w.rss_bytes), cpu(w.cpu_percent),
                  w.queues) for w in rows]))
    return 0


def _liveness(w: Any, now: float, stale_after: float, node: str | None) -> tuple[str, str]:
    """A worker's state and heartbeat age as the dashboard shows them: a worker of another
    host that died keeps its row "running" until a lease expiry reaps it, so its silence
    past the age `health` allows is what tells it apart."""
    beat = max(0.0, server_age(w.heartbeat_at, w.clock_offset, now))
    state = worker_state(w.id, w.state, beat, stale_after, node)
    return state, f"{age(beat)} ago" + (" (stale)" if state == "silent" else "")


def worker_state(worker_id: str, state: str, beat: float, stale_after: float,
                 node: str | None) -> str:
    """What a worker registered as ``state`` is, its last heartbeat ``beat`` seconds old:
    ``dead (process gone)`` for one of this host whose process is gone (this host's
    workers are named by its node name), ``silent`` past ``stale_after``."""
    if state != "running":
        return state
    if worker_gone(worker_id, node):
        return "dead (process gone)"
    return "silent" if beat > stale_after else state


def _clock(offset: float | None, limit: float) -> str:
    """How far a worker's clock is from the server's; past the limit, said so."""
    over = f" (over {age(limit)})" if over_limit(offset, limit) else ""
    return signed(offset) + over


def _refuse_stray(settings: Any, section: str, what: str, unknown: list[str],
                  known: set[str]) -> None:
    """A settings section naming no ``what`` of the imported modules applies to nothing."""
    if unknown:
        names = ", ".join(sorted(known)) or "none"
        kind = section.partition(".")[0]
        raise ConfigError("; ".join(f"{settings.origin_of(kind, name)}: [{section}.{name}] "
                                    f"names no {what}" for name in unknown)
                          + f" of the imported modules (known: {names})")


def cmd_check(args: argparse.Namespace, ctx: Any) -> int:
    settings = ctx.settings
    ctx.load_tasks()
    from runner.events.delivery import handlers, unknown_handler_sections
    from runner.scheduling.scheduler import Scheduler
    from runner.worker.http_server import probe_listen
    from runner.worker.manager import Manager

    schedules = len(Scheduler(ctx.huey, settings).schedules)  # validates [schedules]
    count = len(registered_tasks(ctx.huey))
    registry = ctx.huey.task_registry
    _refuse_stray(settings, "tasks", "task", unknown_task_sections(settings, registry),
                  {w.task_name for w in registered_tasks(ctx.huey).values()})
    _refuse_stray(settings, "events.handlers", "event handler",
                  unknown_handler_sections(settings), {h.name for h in handlers()})
    listen = probe_listen(settings)  # in use is a note: most often the running worker's
    if listen:
        print(f"note: {listen}")
    if ctx.database_exists():
        jobs = ctx.huey.jobs
        Manager(settings, huey=ctx.huey).check_database(jobs)
        note = jobs.store.space_reclaim_note()
        if note:
            print(f"note: {note}")
        database = jobs.store.location
    else:
        problem = ctx.creation_problem()
        if problem is not None:
            raise DatabaseUnavailable(
                f"{ctx.database_shown}: the worker cannot create the database there: {problem}; "
                "point [runner] database / RUNNER_DATABASE elsewhere")
        # check creates nothing, and does not write into an empty file either.
        database = (f"{ctx.database_shown} (empty file: no jobs database yet; a worker or "
                    "producer creates it)" if ctx.database_empty() else
                    f"{ctx.database_shown} (not created yet: the worker creates it)")
    print(f"ok: {ctx.settings_used}, {counted(count, 'task')}, "
          f"{counted(schedules, 'schedule')}, "
          f"database {database}")
    return 0
