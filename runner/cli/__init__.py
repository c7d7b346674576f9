"""``python -m runner`` and the ``jobrunner`` command: one module per command group.

``jobrunner run`` is the worker (``python run.py``), ``jobrunner tui`` the
dashboard (``python -m tui``); every other subcommand is ``python -m runner``'s.

A command group is a module with ``register(subparsers)``; each subcommand sets
``func(args, ctx) -> int``. Errors of the runner end the program with their own
exit code and a one-line message.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from runner.config import SETTINGS_ENV, Settings
from runner.drivers import preload_shadowed_drivers
from runner.envfile import ServiceEnvironment, service_environment
from runner.errors import DatabaseUnavailable, RunnerError
from runner.files import creation_problem, is_empty_database
from runner.printable import block, one_line
from runner.settings_loader import load_settings
from runner.store.backend import Store
from runner.store.factory import (
    database_of,
    driver_errors,
    holds_jobs,
    is_driver_bug,
    is_url,
    missing_cause,
    pointed_at,
    redacted,
)

#: Command group modules, in the order their commands are listed by --help.
COMMAND_MODULES = ["runner.cli.jobs", "runner.cli.schedules", "runner.cli.events",
                   "runner.cli.ops", "runner.cli.queues", "runner.cli.migrate"]


@dataclass
class Context:
    """What every command needs, opened lazily from the global options."""

    args: argparse.Namespace

    @cached_property
    def service(self) -> ServiceEnvironment:
        """The environment the service runs with (see :mod:`runner.envfile`)."""
        return service_environment()

    @cached_property
    def settings(self) -> Settings:
        settings = load_settings(self.args.settings, self.service.environ)
        if self.args.database:
            # A server's URL names its backend, as the dashboard's --db does: the settings
            # of the file a user moved from read the server's jobs without a queue_type.
            settings = pointed_at(settings, self.args.database)
        return settings

    @property
    def settings_source(self) -> str:
        """How the settings file was found."""
        return self.service.settings_source(self.args.settings)

    @property
    def settings_used(self) -> str:
        """``settings PATH (found via HOW)``, or that no file was found and where it was looked
        for."""
        if self.settings.path is not None:
            return f"settings {self.settings.path} (found via {self.settings_source})"
        try:
            here = os.getcwd()
        except OSError:  # a working directory deleted meanwhile
            here = "the working directory"
        return (f"no settings file (none named by --settings or {SETTINGS_ENV}, no settings.toml "
                f"in {here}): built-in defaults")

    def database_exists(self) -> bool:
        """Whether the jobs database is there (asked of a server without creating it)."""
        return holds_jobs(self.settings)

    def database_empty(self) -> bool:
        """Whether the settings name a SQLite file that is there but empty (no jobs
        database yet: the first worker or producer makes one in it)."""
        return (self.settings.worker.queue_type == "sqlite"
                and not is_url(self.settings.runner.database)
                and is_empty_database(self.settings.database_path))

    def creation_problem(self) -> str | None:
        """Why the worker could not create the SQLite file the settings name (None for a
        server, or when it could)."""
        if self.settings.worker.queue_type != "sqlite" or is_url(self.settings.runner.database):
            return None
        return creation_problem(self.settings.database_path)

    @property
    def database_shown(self) -> str:
        """Where the jobs database is, as messages name it (a URL without its password)."""
        return redacted(database_of(self.settings))

    @property
    def database_missing(self) -> str:
        """What is missing when :meth:`database_exists` is False."""
        cause = missing_cause(self.settings)
        if cause is not None:
            return f"{self.database_shown} holds no jobs database: {cause}"
        if is_url(self.settings.runner.database):
            return f"{self.database_shown} holds no jobs tables"
        return f"{self.database_shown} does not exist"

    @cached_property
    def huey(self):  # noqa: ANN201 - RunnerHuey, imported lazily to keep --help fast
        from runner.registry import get_huey

        huey = get_huey()
        # A person (or a monitoring probe) waits on the answer: a lock another session
        # holds on a server's tables is waited for as a SQLite file's lock is, then refused.
        huey.configure(self.settings, lock_wait=self.settings.database.busy_timeout)
        return huey

    @cached_property
    def store(self) -> Store:
        # Only commands that write new rows (``creates``) may create the database: the
        # others read, or act on rows that must already be there.
        if not getattr(self.args, "creates", False) and not self.database_exists():
            cause = missing_cause(self.settings)
            raise DatabaseUnavailable(
                f"{self.database_shown}: no jobs database here"
                f"{'; ' + cause if cause else ''}, with {self.settings_used}; this command "
                "does not create one. Start a worker first, or pass the service's --settings "
                "or --database")
        jobs = self.huey.jobs
        assert jobs is not None
        return jobs.store

    def load_tasks(self) -> None:
        """Import the task modules named in settings (to resolve task names)."""
        from runner.registry import import_task_modules

        self.huey  # noqa: B018 - configure first, so imports register with these settings
        import_task_modules(self.settings.runner.imports)


#: Subcommands that are whole programs with their own options: name -> (help, where).
PROGRAMS = {
    "run": ("start the worker (the options of python run.py; see run --help)",
            "runner.worker.main"),
    "tui": ("the terminal dashboard (the options of python -m tui; see tui --help)",
            "tui.__main__"),
}


def build_parser(prog: str = "python -m runner") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Inspect and control the job runner.")
    parser.add_argument("--settings", metavar="PATH", help="settings file")
    parser.add_argument("--database", metavar="PATH",
                        help="jobs database: a file, or a PostgreSQL or Redis URL (overrides "
                        "settings)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (text, _) in PROGRAMS.items():
        sub.add_parser(name, help=text, add_help=False)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _program(argv: list[str]) -> tuple[str, list[str]] | None:
    """``run``/``tui`` and the arguments to hand them, the global options carried over."""
    carried: list[str] = []
    rest = list(argv)
    while len(rest) >= 2 and rest[0] in ("--settings", "--database"):
        option, value, *rest = rest
        carried += [option, value]
    if not rest or rest[0] not in PROGRAMS:
        return None
    if rest[0] == "tui":  # the dashboard spells it --db
        carried = ["--db" if arg == "--database" else arg for arg in carried]
    return rest[0], rest[1:] + carried


def _run_worker(argv: list[str], prog: str) -> int:
    """``run``: a stop request while the worker's modules load still drains (as run.py)."""
    early: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: early.append(signum))
    worker = importlib.import_module(PROGRAMS["run"][1])
    return int(worker.main(argv, early_signals=early, prog=prog) or 0)


def main(argv: Sequence[str] | None = None, prog: str = "python -m runner") -> int:
    """Run one command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    program = _program(argv)
    if program is not None:
        name, rest = program
        # Usage and error lines name the command as typed: `jobrunner run`, not run.py.
        if name == "run":
            return _run_worker(rest, f"{prog} run")
        return int(importlib.import_module(PROGRAMS[name][1]).main(rest, f"{prog} tui") or 0)
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    ctx = Context(args)
    try:
        return int(args.func(args, ctx) or 0)
    except RunnerError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        if exc.detail:
            print(block(exc.detail), file=sys.stderr)
        return exc.exit_code
    except driver_errors() as exc:
        # A server backend's driver speaks for the server (down, unreachable, refusing):
        # that is the database's problem, said in one line; its wrong statements are bugs.
        if is_driver_bug(exc):
            raise
        database = database_of(ctx.settings)
        # A SQLite file has no server: SQLite's own words are all there is to say.
        hint = "; is the server up and the URL right?" if is_url(database) else ""
        print(f"error: {redacted(database)}: {one_line(exc).rstrip('.')}{hint}",
              file=sys.stderr)
        return DatabaseUnavailable.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def jobrunner() -> int:
    """The ``jobrunner`` console script.

    Like ``python -m runner`` (and ``celery``), it puts the current directory on
    the import path, so ``[runner] imports`` name modules of the project it runs in;
    a driver a project module is named after is imported before (as in ``run.py``).
    """
    if os.getcwd() not in sys.path:
        preload_shadowed_drivers(os.getcwd())
        sys.path.insert(0, os.getcwd())
    return main(prog="jobrunner")
