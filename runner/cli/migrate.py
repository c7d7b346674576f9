"""``migrate-to``: copy this SQLite jobs file over to a PostgreSQL database or a Redis server."""

from __future__ import annotations

import argparse
import time
from typing import Any

from runner.errors import ConfigError
from runner.store.factory import redacted
from runner.store.transfer import copy_file, target_backend, target_url

DAY = 86400.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate-to", help="copy waiting jobs, schedules, pauses, counters and "
                       "recent history to a PostgreSQL database or a Redis server (safe to run "
                       "again)")
    p.add_argument("url", help="postgresql://user@host:5432/dbname, or redis://host:6379/0 "
                   "or unix:///run/redis/redis.sock (keys under [runner] redis_prefix unless "
                   "the URL names ?prefix=NAME)")
    p.add_argument("--history-days", type=float, default=7.0, metavar="DAYS",
                   help="also copy jobs finished, slots fired and log records written in the "
                   "last DAYS (default 7)")
    p.add_argument("--force", action="store_true",
                   help="copy even while workers run on the file (their later work is not "
                   "copied, and a job they finish meanwhile may run again on the target)")
    p.set_defaults(func=cmd_migrate_to)


def _next_step(backend: str, url: str) -> str:
    if backend == "postgres":
        return "set queue_type = \"postgres\" and [runner] database to the URL"
    base, _, query = url.partition("?")
    prefix = dict(p.partition("=")[::2] for p in query.split("&")).get("prefix")
    return (f"set queue_type = \"redis\", [runner] redis_url = \"{redacted(base)}\" and "
            f"redis_prefix = \"{prefix}\"")


def cmd_migrate_to(args: argparse.Namespace, ctx: Any) -> int:
    backend = target_backend(args.url)
    if args.history_days < 0:
        raise ConfigError("migrate-to: --history-days must not be negative")
    url = target_url(ctx.settings, args.url)
    report = copy_file(ctx.settings, url, force=args.force,
                       history_since=time.time() - args.history_days * DAY)
    print(f"copied {ctx.settings.database_path} to {redacted(url)}:")
    for name, (read, written) in report.items():
        print(f"  {name}: {read} read, {written} new, {read - written} already there")
    print(f"next: {_next_step(backend, url)}, then start the workers (running this again "
          "copies only what is new)")
    return 0
