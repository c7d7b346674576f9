"""The SQLite store passes each operation on to the store module that holds its statements."""

from __future__ import annotations

import inspect

from runner.store import (
    events,
    integrity,
    job_control,
    logs,
    maintenance,
    queries,
    schedules,
    stats,
    workers,
)
from runner.store.sqlite import SqliteStore

MODULES = [workers, logs, schedules, events, queries, job_control, maintenance, stats,
           integrity]
RENAMED = {"prune_retention": (maintenance, "prune")}


def test_each_operation_takes_what_its_statement_function_takes():
    stale = []
    for name, method in vars(SqliteStore).items():
        if name.startswith("_") or not inspect.isfunction(method):
            continue
        module, function = RENAMED.get(name, (None, name))
        found = [m for m in ([module] if module else MODULES)
                 if getattr(getattr(m, function, None), "__module__", None) == m.__name__]
        if not found:
            continue  # a transaction of the state machine, written in the class itself
        theirs = list(inspect.signature(getattr(found[0], function)).parameters.values())[1:]
        ours = list(inspect.signature(method).parameters.values())[1:]
        if [(p.name, p.kind, p.default) for p in theirs] != [
                (p.name, p.kind, p.default) for p in ours]:
            stale.append(f"{name}: {inspect.signature(method)} vs "
                         f"{inspect.signature(getattr(found[0], function))}")
    assert stale == []
