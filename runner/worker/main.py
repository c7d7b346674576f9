"""``python run.py``: argument parsing and exit codes of the worker process."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from runner.config import SETTINGS_ENV, Settings
from runner.envfile import service_environment
from runner.errors import RunnerError
from runner.printable import block
from runner.sections import LOG_LEVELS
from runner.setting_bounds import THREADS
from runner.settings_loader import load_settings
from runner.worker.log_config import configure_logging

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Run the job runner: huey's consumer over the jobs database, with leases,
retries, timeouts and orphan recovery.

Settings come from --settings, else the file named by $RUNNER_SETTINGS, else
RUNNER_SETTINGS in the environment file /etc/jobrunner/jobrunner.env (or
$RUNNER_ENV_FILE; the CLI reads it too), else settings.toml in the working
directory. Environment overrides (from the process or that file):
WORKER_CONCURRENCY, WORKER_QUEUE_TYPE, WORKER_LOG_LEVEL, RUNNER_DATABASE,
RUNNER_NODE_NAME, REDIS_URL, and WORKER_QUEUE_<KEY> / WORKER_TASK_<KEY>
(NAME=VALUE,...) for the keys of [queues.NAME] and [tasks.NAME].
"""

EPILOG = """\
signals:
  SIGTERM, SIGINT   drain: stop claiming, wait up to [worker] shutdown_timeout for
                    running jobs, hand back what still runs, exit 0. A second
                    signal stops at once; unfinished jobs are recovered at next start.
  SIGHUP            reload settings.toml (log level, [logging], [retention],
                    [health], [tasks.*], [queues.*], retry defaults,
                    max_memory_mb, min_free_disk_mb and max_payload_mb); a bad
                    file is logged and the old settings are kept.

systemd: with $NOTIFY_SOCKET set, sends READY=1 once recovery is done and the
workers run, STATUS= lines, WATCHDOG=1 (when $WATCHDOG_USEC is set) while the
process's threads run and make progress (a locked database shows in STATUS,
not by missing pings), RELOADING=1 then READY=1 around a SIGHUP reload
(Type=notify-reload), and STOPPING=1 at shutdown.

exit codes:
  0   clean shutdown
  1   unexpected error (see the log)
  65  the database is corrupt or not a jobs database
  73  the database (or its directory) cannot be created or opened
  75  the database stayed locked, or another process listens on the [metrics] listen
      address (it may let go: an older worker still draining)
  78  bad settings: the message names the file and key (a [metrics] listen address
      this host does not have too)
  86  the worker went over [worker] max_memory_mb, drained and exited (restart it)
  87  more threads were stuck in blocking calls than the worker runs; it drained
      and exited (restart it)
"""


def build_parser(prog: str = "run.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", metavar="PATH",
                        help=f"settings file (default: ${SETTINGS_ENV} or ./settings.toml)")
    parser.add_argument("--database", metavar="PATH",
                        help="jobs database: a file, or a PostgreSQL or Redis URL (overrides "
                        "settings)")
    parser.add_argument("--concurrency", "-c", type=_threads, metavar="N",
                        help="worker threads (overrides [worker] max_concurrent_tasks)")
    parser.add_argument("--queues", "-q", metavar="Q1,Q2",
                        help="only take jobs from these queues (default: all)")
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--scheduler-only", action="store_true",
                      help="fire periodic schedules only; run no jobs")
    role.add_argument("--workers-only", action="store_true",
                      help="run jobs only; fire no schedules (default: both)")
    parser.add_argument("--log-level", type=_log_level, metavar="LEVEL",
                        help="DEBUG, INFO, WARNING, ERROR (overrides WORKER_LOG_LEVEL)")
    return parser


# The options below reach the settings as WORKER_* variables; checked here, an error
# names the option typed rather than a variable the user never set.
def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    if value > THREADS.value:
        raise argparse.ArgumentTypeError(f"expected a whole number of at most {THREADS}, "
                                         f"got {text!r}")
    return value


def _log_level(text: str) -> str:
    if text.strip().upper() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_LEVELS)}, "
                                         f"got {text!r}")
    return text


def main(argv: Sequence[str] | None = None, *, early_signals: list[int] | None = None,
         prog: str = "run.py") -> int:
    """Entry point of ``run.py``; returns the exit code.

    ``early_signals`` is the list run.py's first handlers append SIGTERM/SIGINT to
    while the runner is imported; the worker drains for any found there. ``prog`` is
    the command as typed (``jobrunner run``), for usage and error lines.
    """
    args = build_parser(prog).parse_args(argv)
    try:
        environ = service_environment().environ
    except RunnerError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.concurrency is not None:
        environ["WORKER_CONCURRENCY"] = str(args.concurrency)
    if args.log_level:
        environ["WORKER_LOG_LEVEL"] = args.log_level
    if args.database:
        from runner.store.factory import SCHEMES, is_url

        environ["RUNNER_DATABASE"] = args.database
        scheme = args.database.split("://", 1)[0] if is_url(args.database) else "sqlite"
        # The URL names its backend, as the CLI's --database and the dashboard's --db take it.
        if scheme in SCHEMES:
            environ["WORKER_QUEUE_TYPE"] = SCHEMES[scheme]
    try:
        settings = load_settings(args.settings, environ)
        configure_logging(settings)
    except RunnerError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    queues = tuple(q.strip() for q in (args.queues or "").split(",") if q.strip())
    from runner.worker.manager import Manager

    def reload() -> Settings:
        return load_settings(args.settings, environ)

    try:
        role = "scheduler" if args.scheduler_only else "workers" if args.workers_only else "all"
        return Manager(settings, queues=queues, loader=reload, role=role,
                       early_signals=early_signals).run()
    except RunnerError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        if exc.detail:
            print(block(exc.detail), file=sys.stderr)
        # The console has it from the line above; the log file keeps it too.
        logger.error("%s; exiting (code %d)", exc, exc.exit_code,
                     extra={"console": False, "detail": exc.detail})
        return exc.exit_code
