"""``migrate-to``: copy this SQLite jobs file over to a PostgreSQL database."""

from __future__ import annotations

import argparse
import time
from typing import Any

from runner.config import POSTGRES_URL_PREFIXES
from runner.errors import ConfigError
from runner.store.factory import copy_to_postgres, redacted

DAY = 86400.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate-to", help="copy waiting jobs, schedules, pauses, counters and "
                       "recent history to a PostgreSQL database (safe to run again)")
    p.add_argument("url", help="postgresql://user@host:5432/dbname")
    p.add_argument("--history-days", type=float, default=7.0, metavar="DAYS",
                   help="also copy jobs finished and slots fired in the last DAYS (default 7)")
    p.add_argument("--force", action="store_true",
                   help="copy even while workers run on the file (their later work is not "
                   "copied, and a job they finish meanwhile may run again on PostgreSQL)")
    p.set_defaults(func=cmd_migrate_to)


def cmd_migrate_to(args: argparse.Namespace, ctx: Any) -> int:
    if not args.url.startswith(POSTGRES_URL_PREFIXES):
        raise ConfigError(f"migrate-to: {args.url!r} is not a PostgreSQL URL "
                          "(postgresql://user@host:5432/dbname)")
    if args.history_days < 0:
        raise ConfigError("migrate-to: --history-days must not be negative")
    report = copy_to_postgres(ctx.settings, args.url, force=args.force,
                              history_since=time.time() - args.history_days * DAY)
    print(f"copied {ctx.settings.database_path} to {redacted(args.url)}:")
    for name, (read, written) in report.items():
        print(f"  {name}: {read} read, {written} new, {read - written} already there")
    print("next: set queue_type = \"postgres\" and [runner] database to the URL, then start "
          "the workers (running this again copies only what is new)")
    return 0
