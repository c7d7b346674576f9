"""The data layer: every SQL statement, every driver and the schema.

Nothing outside this package builds a query or holds a connection: callers
hold a :class:`~runner.store.backend.Store` (opened by
:func:`runner.store.factory.open_store`) and import only the neutral modules
here (the protocol, the factory, the row values, the states). Each backend
keeps its statements in its own package: SQLite's in :mod:`runner.store.sqlite`.
It imports only the base modules (:mod:`runner.config`, :mod:`runner.errors`,
:mod:`runner.ids`, :mod:`runner.event_patterns`, ...).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

#: Modules that moved into :mod:`runner.store.sqlite`; their old names still import
#: (the same module object), so code written against ``runner.store.queries`` and the
#: like keeps working. New code imports the row values from the neutral modules.
MOVED = frozenset({
    "counters", "dashboard_reads", "db", "events", "integrity", "job_control", "kv", "leases",
    "logs", "maintenance", "migrations", "models", "queries", "running_file", "schedules",
    "schema", "scrape_reads", "stats", "transitions", "wakeup", "workers"})


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        pass  # the target ran when it was imported


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Resolves ``runner.store.NAME`` of a moved module to ``runner.store.sqlite.NAME``."""

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(f"{__name__}.sqlite.{name}"))


if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedFinder())
