"""``python -m tui [--db PATH] [--settings PATH] [--read-only] [--refresh SECONDS]
[--error-log PATH]``.

``--web [--host H] [--port P] [--actions]`` serves the same dashboard to a browser.

SIGINT or SIGTERM from outside the terminal (``kill -INT``, a supervisor stopping it)
ends it quietly with the shell's status for the signal (130, 143), the terminal
restored. Only the standard library is imported at the top, so that holds while
Textual and the runner are still being imported.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.app import DashboardApp

#: The signals that stop the dashboard; each exits with 128 + its number, as a shell says.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def parse_args(argv: list[str] | None = None, prog: str = "python -m tui"
               ) -> argparse.Namespace:
    from runner.setting_bounds import DAY
    from tui.source import DB_ENV

    parser = argparse.ArgumentParser(
        prog=prog, description="Live terminal dashboard of the jobs database.")
    parser.add_argument("--db", help="the SQLite file or a database URL (default: "
                                     f"${DB_ENV}, else [runner] database of the settings)")
    parser.add_argument("--redis", metavar="URL",
                        help="a Redis backend's data: redis://HOST:PORT/DB, with ?prefix=NAME "
                             "when the runner's redis_prefix is not jobrunner")
    parser.add_argument("--settings", help="settings.toml (default: $RUNNER_SETTINGS, else "
                                           "RUNNER_SETTINGS in the service's environment "
                                           "file, else ./settings.toml)")
    parser.add_argument("--read-only", action="store_true",
                        help="hide and refuse every action (retry, discard, ...)")
    parser.add_argument("--refresh", type=float, metavar="SECONDS",
                        help="seconds between refreshes (default 1)")
    parser.add_argument("--error-log", metavar="PATH",
                        help="where tracebacks of the dashboard's own errors go (default "
                             "$XDG_STATE_HOME/jobrunner/dashboard-errors.log)")
    web = parser.add_argument_group("browser", "serve the dashboard to a browser instead")
    web.add_argument("--web", action="store_true",
                     help="serve the dashboard over HTTP (textual-serve); read-only unless "
                          "--actions")
    web.add_argument("--host", default=None,
                     help="address to listen on with --web (default 127.0.0.1: this machine "
                          "only)")
    web.add_argument("--port", type=int, default=None, help="port for --web (default 8000)")
    web.add_argument("--actions", action="store_true",
                     help="with --web, allow retry, discard and the other actions")
    args = parser.parse_args(argv)
    if args.db is None and args.redis is None and os.environ.get(DB_ENV):
        args.db = os.environ[DB_ENV]
    if args.redis is not None:
        if args.db is not None:
            parser.error("--db and --redis name two databases: give one")
        if not args.redis.startswith(("redis://", "rediss://", "unix://")):
            parser.error(f"--redis {args.redis}: expected a redis://, rediss:// or unix:// URL")
        args.db = args.redis
    if not args.web and (args.host is not None or args.port is not None or args.actions):
        parser.error("--host, --port and --actions only apply with --web")
    if args.web and args.actions and args.read_only:
        parser.error("--actions and --read-only contradict each other")
    if args.refresh is not None and not 0 < args.refresh < math.inf:
        parser.error(f"--refresh {args.refresh:g}: expected a number of seconds greater than 0")
    if args.refresh is not None and args.refresh > DAY.value:
        parser.error(f"--refresh {args.refresh:g}: expected at most {DAY}")
    if args.port is not None and not 0 < args.port < 65536:
        parser.error(f"--port {args.port}: choose a port between 1 and 65535")
    return args


def main(argv: list[str] | None = None, prog: str = "python -m tui") -> int:
    """Check the database, then run the dashboard; returns the exit code.

    A SIGINT before the dashboard runs (Python's KeyboardInterrupt) ends it with 130
    and no traceback; once it runs, SIGINT and SIGTERM ask it to exit (:func:`_run`).
    ``prog`` is the command as typed (``jobrunner tui``), for usage and error lines.
    """
    try:
        return _main(argv, prog)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


def _main(argv: list[str] | None, prog: str) -> int:
    args = parse_args(argv, prog)
    from runner.drivers import preload_shadowed_drivers
    from runner.errors import ConfigError, DatabaseError
    from tui.app import make_app

    # `python -m tui` puts the working directory first on the import path: a project's
    # own redis.py there must not stand in for the driver the Redis backend imports.
    preload_shadowed_drivers()

    try:
        app = make_app(db=args.db, settings=args.settings, read_only=args.read_only,
                       refresh=args.refresh, error_log=args.error_log)
        app.source.check()
    except (ConfigError, DatabaseError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.web:
        from tui import web

        app.source.close()
        where = app.source.url or app.source.path
        web.serve(web.dashboard_command(db=where, settings=args.settings,
                                        refresh=args.refresh, actions=args.actions),
                  host=args.host or web.DEFAULT_HOST, port=args.port or web.DEFAULT_PORT,
                  environment=web.dashboard_environment(db=where))
        return 0
    return asyncio.run(_run(app))


async def _run(app: DashboardApp) -> int:
    """Run the dashboard (as ``App.run`` does); a stop signal makes it exit as ``q`` does.

    The app then restores the terminal itself, and exits with 128 + the signal's number.
    The handlers are the event loop's, so they run between the app's steps, never inside
    one, and a second signal while it exits changes nothing.
    """
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, app.exit, None, 128 + signum)
    try:
        await app.run_async()
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
