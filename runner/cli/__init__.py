"""``python -m runner``: one module per command group, each adding its subcommands.

A command group is a module with ``register(subparsers)``; each subcommand sets
``func(args, ctx) -> int``. Errors of the runner end the program with their own
exit code and a one-line message.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from runner.config import Settings, load_settings
from runner.db import Database
from runner.envfile import ServiceEnvironment, service_environment
from runner.errors import DatabaseUnavailable, RunnerError

#: Commands that may create the database: the others only read, or act on rows that exist.
CREATING = ("enqueue", "emit")

#: Command group modules, in the order their commands are listed by --help.
COMMAND_MODULES = ["runner.cli.jobs", "runner.cli.schedules", "runner.cli.events",
                   "runner.cli.ops"]


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
            settings = settings.with_database(self.args.database)
        return settings

    @property
    def settings_source(self) -> str:
        """How the settings file was found."""
        return self.service.settings_source(self.args.settings)

    def database_exists(self) -> bool:
        return self.settings.database_path.exists()

    @cached_property
    def huey(self):  # noqa: ANN201 - RunnerHuey, imported lazily to keep --help fast
        from runner.decorators import get_huey

        huey = get_huey()
        huey.configure(self.settings)
        return huey

    @cached_property
    def db(self) -> Database:
        if self.args.command not in CREATING and not self.database_exists():
            shown = self.settings.path or "built-in defaults"
            raise DatabaseUnavailable(
                f"{self.settings.database_path}: no jobs database here (settings: {shown}, "
                f"found via {self.settings_source}); this command does not create one. Start "
                "a worker first, or pass the service's --settings or --database")
        jobs = self.huey.jobs
        assert jobs is not None
        return jobs.db

    def load_tasks(self) -> None:
        """Import the task modules named in settings (to resolve task names)."""
        from runner.manager import import_task_modules

        self.huey  # noqa: B018 - configure first, so imports register with these settings
        import_task_modules(self.settings.runner.imports)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runner",
                                     description="Inspect and control the job runner.")
    parser.add_argument("--settings", metavar="PATH", help="settings file")
    parser.add_argument("--database", metavar="PATH", help="jobs database (overrides settings)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args, Context(args)) or 0)
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
