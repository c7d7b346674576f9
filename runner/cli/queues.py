"""Queue and task commands: queues [list|pause|resume], tasks [pause|resume]."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from runner import control
from runner.cli.format import age, counted, table, when
from runner.cli.jobs import find_task
from runner.readmodel.queues import queues_view

#: What `queues --json` prints.
JSON_HELP = ('print {"queues": [...], "paused_tasks": [...]}: an object per queue, and the '
             "names of the paused tasks")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("queues", help="queues: jobs by state, limits, rate, paused; pause, resume")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_list)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    q = actions.add_parser("list", help="every queue (default)")
    q.add_argument("--json", action="store_true", help=JSON_HELP)
    q.set_defaults(func=cmd_list)
    for verb, helptext in (("pause", "stop claiming a queue's jobs (survives restarts)"),
                           ("resume", "claim a paused queue's jobs again")):
        q = actions.add_parser(verb, help=helptext)
        q.add_argument("name")
        q.set_defaults(func=cmd_pause, kind="queue", verb=verb)

    p = sub.add_parser("tasks", help="pause or resume one task's jobs in every queue")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for verb, helptext in (("pause", "stop claiming a task's jobs (survives restarts)"),
                           ("resume", "claim a paused task's jobs again")):
        q = actions.add_parser(verb, help=helptext)
        q.add_argument("name", help="the task's name, as `jobs` shows it")
        q.set_defaults(func=cmd_pause, kind="task", verb=verb)


def cmd_list(args: argparse.Namespace, ctx: Any) -> int:
    now = time.time()
    view = queues_view(ctx.store, ctx.settings, now)
    if args.json:
        print(json.dumps({"queues": [q.as_dict() for q in view.queues],
                          "paused_tasks": [p.name for p in view.paused_tasks]}, indent=2))
        return 0
    rows = []
    for q in view.queues:
        limits = [f"max {q.max_size} {q.on_full}" if q.max_size else "unbounded"]
        if q.concurrency:
            limits.append(f"concurrency {q.concurrency}")
        if q.rate_limit:
            limits.append(f"rate {q.rate_text}")
        if q.weight != 1:
            limits.append(f"weight {q.weight}")
        state = (f"paused by {q.paused_by}" if q.paused else
                 "active (pause pending: next worker start or SIGHUP)"
                 if q.pause_pending else "active")
        running = f"{q.running} +{q.stalled} stalled" if q.stalled else q.running
        rows.append((q.name, q.waiting, q.scheduled, running, q.retrying, q.dead,
                     "-" if q.oldest_waiting is None else age(q.oldest_waiting),
                     f"{q.per_minute:g}", ", ".join(limits),
                     f"{q.rejected}/{q.dropped}", state))
    print(table(["QUEUE", "WAITING", "SCHEDULED", "RUNNING", "RETRYING", "DEAD",
                 "OLDEST WAITING", "DONE/MIN", "LIMITS", "REJECTED/DROPPED", "STATE"], rows))
    paused = ", ".join(f"{p.name} (by {p.changed_by or '?'} at {when(p.changed_at)})"
                       for p in view.paused_tasks)
    print(f"({counted(len(view.queues), 'queue')}, {sum(q.paused for q in view.queues)} paused"
          + (f"; paused tasks: {paused}" if paused else "") + ")")
    return 0


def cmd_pause(args: argparse.Namespace, ctx: Any) -> int:
    act = {("queue", "pause"): control.pause_queue, ("queue", "resume"): control.resume_queue,
           ("task", "pause"): control.pause_task, ("task", "resume"): control.resume_task}
    name = args.name
    if args.kind == "task":
        name = _task_name(ctx, name, resuming=args.verb == "resume")
    changed = act[(args.kind, args.verb)](name, by=control.actor("cli"), store=ctx.store)
    done = "paused" if args.verb == "pause" else "resumed"
    print(f"{args.kind} {name}: {done}" if changed else f"{args.kind} {name}: already {done}")
    return 0


def _task_name(ctx: Any, name: str, *, resuming: bool) -> str:
    """The name a task's jobs carry, for a short or full name of an imported task: a typo
    is refused rather than pausing nothing. A paused name resumes as it is (its task may
    be gone from the code)."""
    if resuming and any(p.kind == "task" and p.name == name and p.paused
                        for p in ctx.store.list_pauses()):
        return name
    return find_task(ctx, name).task_name
