"""``python -m tui [--db PATH] [--settings PATH] [--read-only] [--refresh SECONDS]
[--error-log PATH]``."""

from __future__ import annotations

import argparse
import sys

from runner.errors import ConfigError, DatabaseError
from tui.app import make_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tui", description="Live terminal dashboard of the jobs database.")
    parser.add_argument("--db", help="the SQLite file (default: [runner] database of the "
                                     "settings)")
    parser.add_argument("--settings", help="settings.toml (default: $RUNNER_SETTINGS or "
                                           "./settings.toml)")
    parser.add_argument("--read-only", action="store_true",
                        help="hide and refuse every action (retry, discard, ...)")
    parser.add_argument("--refresh", type=float, metavar="SECONDS",
                        help="seconds between refreshes (default 1)")
    parser.add_argument("--error-log", metavar="PATH",
                        help="where tracebacks of the dashboard's own errors go (default "
                             "$XDG_STATE_HOME/jobrunner/dashboard-errors.log)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Check the database, then run the dashboard; returns the exit code."""
    args = parse_args(argv)
    try:
        app = make_app(db=args.db, settings=args.settings, read_only=args.read_only,
                       refresh=args.refresh, error_log=args.error_log)
        app.source.check()
    except (ConfigError, DatabaseError) as exc:
        print(f"python -m tui: {exc}", file=sys.stderr)
        return exc.exit_code
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
