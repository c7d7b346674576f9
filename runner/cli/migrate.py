"""``migrate-to``: copy this SQLite jobs file over to a PostgreSQL database."""

from __future__ import annotations

import argparse
import time
from typing import Any

from runner.config import POSTGRES_URL_PREFIXES
from runner.errors import ConfigError, DatabaseUnavailable, InvalidAction
from runner.store.db import Database
from runner.store.maintenance import other_running_workers
from runner.store.postgres import open_postgres_store
from runner.store.postgres.connection import redacted
from runner.store.postgres.transfer import copy_from_sqlite

DAY = 86400.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate-to", help="copy waiting jobs, schedules and recent history "
                       "to a PostgreSQL database (safe to run again)")
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
    path = ctx.settings.database_path
    if not path.exists():
        raise DatabaseUnavailable(f"{path}: no jobs database here to copy from")
    source = Database(path, readonly=True)
    running = other_running_workers(source)
    if running and not args.force:
        raise InvalidAction(
            f"{path}: {running} worker(s) still run on this file; stop them first (a job they "
            "finish after the copy would run again on PostgreSQL), or pass --force")
    target = open_postgres_store(args.url)
    report = copy_from_sqlite(source, target.db, channel=target.db.channel,
                              history_since=time.time() - args.history_days * DAY)
    print(f"copied {path} to {redacted(args.url)}:")
    for name, read in report.read.items():
        written = report.written.get(name, 0)
        print(f"  {name}: {read} read, {written} new, {read - written} already there")
    print("next: set queue_type = \"postgres\" and [runner] database to the URL, then start "
          "the workers (running this again copies only what is new)")
    return 0
