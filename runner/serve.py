"""``python run.py``: argument parsing and exit codes of the worker process."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from runner.config import SETTINGS_ENV, load_settings
from runner.errors import RunnerError

DESCRIPTION = """\
Run the job runner: huey's consumer over the jobs database, with leases,
retries, timeouts and orphan recovery.

Settings come from settings.toml in the working directory, or the file named by
$RUNNER_SETTINGS (or --settings). Environment overrides: WORKER_CONCURRENCY,
WORKER_QUEUE_TYPE, WORKER_LOG_LEVEL, RUNNER_DATABASE.
"""

EPILOG = """\
signals:
  SIGTERM, SIGINT   drain: stop claiming, wait up to [worker] shutdown_timeout for
                    running jobs, hand back what still runs, exit 0. A second
                    signal stops at once; unfinished jobs are recovered at next start.

exit codes:
  0   clean shutdown
  1   unexpected error (see the log)
  65  the database is corrupt or not a jobs database
  73  the database (or its directory) cannot be created or opened
  75  the database stayed locked
  78  bad settings: the message names the file and key
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", metavar="PATH",
                        help=f"settings file (default: ${SETTINGS_ENV} or ./settings.toml)")
    parser.add_argument("--database", metavar="PATH", help="jobs database (overrides settings)")
    parser.add_argument("--concurrency", "-c", type=int, metavar="N",
                        help="worker threads (overrides [worker] max_concurrent_tasks)")
    parser.add_argument("--queues", "-q", metavar="Q1,Q2",
                        help="only take jobs from these queues (default: all)")
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--scheduler-only", action="store_true",
                      help="fire periodic schedules only; run no jobs")
    role.add_argument("--workers-only", action="store_true",
                      help="run jobs only; fire no schedules (default: both)")
    parser.add_argument("--log-level", metavar="LEVEL",
                        help="DEBUG, INFO, WARNING, ERROR (overrides WORKER_LOG_LEVEL)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``run.py``; returns the exit code."""
    args = build_parser().parse_args(argv)
    environ = dict(os.environ)
    if args.concurrency is not None:
        environ["WORKER_CONCURRENCY"] = str(args.concurrency)
    if args.log_level:
        environ["WORKER_LOG_LEVEL"] = args.log_level
    if args.database:
        environ["RUNNER_DATABASE"] = args.database
    try:
        settings = load_settings(args.settings, environ)
    except RunnerError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return exc.exit_code
    configure_logging(settings.worker.log_level)
    queues = tuple(q.strip() for q in (args.queues or "").split(",") if q.strip())
    from runner.manager import Manager

    try:
        role = "scheduler" if args.scheduler_only else "workers" if args.workers_only else "all"
        return Manager(settings, queues=queues, role=role).run()
    except RunnerError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return exc.exit_code


def configure_logging(level: str) -> None:
    """Console logging at ``level``; huey's per-task lines only at DEBUG."""
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(processName)s %(threadName)s %(name)s: %(message)s")
    if level.upper() != "DEBUG":
        logging.getLogger("huey").setLevel(logging.WARNING)
