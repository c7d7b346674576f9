"""Event commands: emit, events (list, show, replay), handlers."""

from __future__ import annotations

import argparse
import datetime
import json
import re
import time
from typing import Any

from runner.cli import checks
from runner.cli.format import counted, key_values, table, when
from runner.errors import SerializationError
from runner.event_patterns import check_pattern
from runner.store.rows import short_id

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("emit", help="emit an event (prints its id)")
    p.add_argument("name", help="event name, e.g. user.signup")
    p.add_argument("--data", default="{}", metavar="JSON", help="event data (default {})")
    p.add_argument("--key", help="idempotency key: a repeat inside [events] dedupe_window "
                   "returns the first event's id")
    p.add_argument("--delay", metavar="SECONDS", help="dispatch no sooner than this")
    p.set_defaults(func=cmd_emit, creates=True)

    p = sub.add_parser("events", help="list events with their handler outcomes")
    _add_filters(p)
    p.add_argument("--status", choices=["pending", "dispatched", "unhandled"])
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_events)
    events_sub = p.add_subparsers(dest="events_command", metavar="{show,replay}")

    s = events_sub.add_parser("show", help="one event: data, source and every handler job")
    s.add_argument("id", help="event id (or a unique prefix)")
    s.set_defaults(func=cmd_show)

    r = events_sub.add_parser("replay", help="deliver stored events again, through a worker, "
                              "to the handlers it has now")
    _add_filters(r)
    r.add_argument("--id", dest="ids", action="append", metavar="EVENT_ID",
                   help="this event (repeatable); else every event matching --name/--since")
    r.add_argument("--handler", metavar="NAME", help="only this handler")
    r.add_argument("--only-failed", action="store_true",
                   help="only handlers whose newest delivery is dead")
    r.set_defaults(func=cmd_replay)

    p = sub.add_parser("handlers", help="event subscriptions of the configured task modules")
    p.set_defaults(func=cmd_handlers)


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", metavar="PATTERN", help="event name or pattern (user.*, user.**)")
    p.add_argument("--since", metavar="WHEN",
                   help="emitted within (30m, 2h, 7d) or since an ISO time")


def parse_since(text: str | None, now: float) -> float | None:
    """``2h``/``30m``/``45s``/``7d``/``1w`` ago, or an ISO date/time (local), as epoch seconds.

    Raises:
        SerializationError: the text is neither.
    """
    if text is None:
        return None
    found = _AGO.match(text.strip())
    if found:
        return now - float(found.group(1)) * _UNITS[found.group(2)]
    try:
        return datetime.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise SerializationError(
            f"--since {text!r}: expected an age like 30m, 2h, 7d or an ISO time") from None


def cmd_emit(args: argparse.Namespace, ctx: Any) -> int:
    from runner.events.delivery import emit

    delay = checks.delay("--delay", args.delay)
    try:
        data = _unique_keys(json.loads(args.data, object_pairs_hook=_Pairs), "data")
    except json.JSONDecodeError as exc:
        raise SerializationError(f"--data is not valid JSON: {exc}; nothing was written") \
            from None
    ctx.huey  # noqa: B018 - point the process-wide runner at these settings first
    print(emit(args.name, data, key=args.key, delay=delay, source="cli"))
    return 0


class _Pairs(list):
    """A JSON object's (key, value) pairs as written, before they become a dict."""


def _unique_keys(value: Any, path: str) -> Any:
    # json.loads keeps the last of two equal keys: the first value would be lost unsaid.
    if isinstance(value, _Pairs):
        found: dict[str, Any] = {}
        for key, item in value:
            if key in found:
                raise SerializationError(f"--data: {path} has the key {key!r} twice; "
                                         "nothing was written")
            found[key] = _unique_keys(item, f"{path}[{key!r}]")
        return found
    if isinstance(value, list):
        return [_unique_keys(item, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def _pattern(args: argparse.Namespace) -> str | None:
    # Refused as @event_handler refuses it: a pattern that can match nothing would
    # otherwise list "(0 events)" and replay nothing, saying nothing of the typo.
    return None if args.name is None else check_pattern(args.name, error=SerializationError)


def cmd_events(args: argparse.Namespace, ctx: Any) -> int:
    pattern = _pattern(args)
    rows = ctx.store.list_events(pattern=pattern,
                                   since=parse_since(args.since, time.time()),
                                   status=args.status, limit=checks.limit("--limit", args.limit))
    outcomes = ctx.store.handler_outcomes([e.id for e in rows])
    print(table(
        ["ID", "NAME", "EMITTED", "STATUS", "KEY", "SOURCE", "HANDLERS"],
        [(short_id(e.id), e.name, when(e.emitted_at), e.status, e.key or "", e.source or "",
          " ".join(f"{o.handler}:{o.outcome}" for o in outcomes[e.id]) or "-")
         for e in rows]))
    print(f"({counted(len(rows), 'event')})")
    return 0


def cmd_show(args: argparse.Namespace, ctx: Any) -> int:
    event = ctx.store.get_event(args.id)
    fields = [("id", event.id), ("name", event.name), ("status", event.status),
              ("key", event.key or "-"), ("source", event.source or "-"),
              ("emitted", when(event.emitted_at)), ("dispatched", when(event.dispatched_at)),
              ("dispatch job", event.dispatch_job or "-"), ("deliveries", event.deliveries),
              ("data", event.data)]
    print(key_values(fields))
    outcomes = ctx.store.handler_outcomes([event.id])[event.id]
    if outcomes:
        print()
        print(table(["HANDLER", "OUTCOME", "JOB", "ATTEMPTS", "DELIVERIES"],
                    [(o.handler, o.outcome, o.job_id, o.attempts, o.deliveries)
                     for o in outcomes]))
    return 0


def cmd_replay(args: argparse.Namespace, ctx: Any) -> int:
    from runner import control

    pattern = _pattern(args)
    if args.ids:
        done = control.replay_events(args.ids, args.handler, only_failed=args.only_failed,
                                     store=ctx.store, settings=ctx.settings)
    else:
        if not pattern and not args.since:
            raise SerializationError("events replay: give --id, or --name and/or --since")
        done = control.replay_matching(pattern, since=parse_since(args.since, time.time()),
                                       handler=args.handler, only_failed=args.only_failed,
                                       store=ctx.store, settings=ctx.settings)
    unfailed = (f"{len(done.nothing_failed)} matching event(s) have no failed handler"
                + (f" {args.handler!r}" if args.handler else ""))
    if not done.jobs:
        print(f"{unfailed}; nothing to replay" if done.nothing_failed
              else "no dispatched event matches; nothing to replay")
        return 0
    more = unfailed.replace(" matching", " more matching", 1)
    print(f"replay of {len(done.events)} event(s) queued as job(s) {' '.join(done.jobs)}: "
          "a worker delivers them to the handlers it has now"
          + (f"; {more} (nothing to redeliver)" if done.nothing_failed else ""))
    return 0


def cmd_handlers(args: argparse.Namespace, ctx: Any) -> int:
    from runner.events.delivery import handlers

    ctx.load_tasks()
    rows = []
    for h in handlers():
        options = h.wrapper.resolve(ctx.settings)
        rows.append((h.pattern, h.name, options.queue, options.priority,
                     options.policy.retry_limit, f"{options.timeout:g}s" if options.timeout
                     else "-", "async" if h.wrapper.is_async else "sync"))
    print(table(["PATTERN", "HANDLER", "QUEUE", "PRIORITY", "RETRIES", "TIMEOUT", "KIND"], rows))
    print(f"({len(rows)} subscriptions)")
    return 0
