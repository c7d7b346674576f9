"""Everything outside the store reaches the data through the ``Store`` protocol.

Callers may import the store's neutral modules (the protocol, the factory, the
row values, the states); never a backend's statements, ``runner.store.sqlite.db`` or a
database driver. The neutral modules themselves stay free of any backend, so a
PostgreSQL or Redis backend plugs in beside SQLite without touching a caller.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.test_layers import _graph, _modules

#: What a module outside runner.store may import from it.
NEUTRAL = {
    "runner.store", "runner.store.backend", "runner.store.factory", "runner.store.states",
    "runner.store.job_rows", "runner.store.rows", "runner.store.event_rows",
    "runner.store.schedule_rows", "runner.store.views", "runner.store.owners",
    "runner.store.job_storage", "runner.store.kvstore", "runner.store.outcomes",
    "runner.store.backpressure", "runner.store.server_clock",
    # The parts of the Store protocol, one per concern.
    "runner.store.handle", "runner.store.job_machine", "runner.store.flow_control",
    "runner.store.worker_presence", "runner.store.schedule_store", "runner.store.event_store",
    "runner.store.log_store", "runner.store.job_queries", "runner.store.bulk_control",
    "runner.store.job_stats", "runner.store.dashboard_panels", "runner.store.metrics_scrape",
    "runner.store.key_values", "runner.store.upkeep",
    # migrate-to: a file copied to another backend.
    "runner.store.transfer",
}
#: Database drivers: imported by backends only.
DRIVERS = {"sqlite3", "peewee", "playhouse", "psycopg", "psycopg2", "psycopg_pool", "redis"}
#: The neutral modules that know the backends: the factory opens them, and a copy of a
#: file reads it with SQLite's reader and writes it with the target's writer.
JUNCTIONS = {"runner.store.factory", "runner.store.transfer"}
#: Modules outside the store that name a driver without opening any database:
#: runner.drivers hands huey's own storages the drivers it kept from them at import.
LOADERS = {"runner.drivers"}


def _in_store(module: str) -> bool:
    return module == "runner.store" or module.startswith("runner.store.")


def store_reach(graph: dict[str, set[str]]) -> list[str]:
    """Imports of non-neutral store modules from outside the store, or from a neutral one."""
    found = []
    for module, targets in sorted(graph.items()):
        if _in_store(module) and (module not in NEUTRAL or module in JUNCTIONS):
            continue
        for target in sorted(targets):
            if _in_store(target) and target not in NEUTRAL:
                found.append(f"{module} imports {target}")
    return found


def driver_imports(sources: dict[str, Path]) -> list[str]:
    """Driver imports of modules outside the backends (anywhere but non-neutral store modules)."""
    found = []
    for module, path in sorted(sources.items()):
        if _in_store(module) and (module not in NEUTRAL or module in JUNCTIONS):
            continue
        if module in LOADERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found += [f"{module} imports {n}" for n in names if n.split(".")[0] in DRIVERS]
    return found


def test_callers_reach_the_store_only_through_its_neutral_modules():
    assert store_reach(_graph()) == []


def test_no_database_driver_outside_the_backends():
    assert driver_imports(_modules()) == []


def test_a_caller_importing_a_backend_module_is_reported(tmp_path):
    graph = {"tui.screens.jobs": {"runner.store.sqlite.db", "runner.store.rows"},
             "runner.store.rows": {"runner.store.sqlite.queries"},
             "runner.store.sqlite.queries": {"runner.store.sqlite.db"}}
    assert store_reach(graph) == ["runner.store.rows imports runner.store.sqlite.queries",
                                  "tui.screens.jobs imports runner.store.sqlite.db"]
    source = tmp_path / "source.py"
    source.write_text("import sqlite3\nfrom peewee import SqliteDatabase\nimport json\n")
    assert driver_imports({"tui.source": source}) == [
        "tui.source imports sqlite3", "tui.source imports peewee"]


def _raw_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return names


def test_the_project_uses_no_old_path_of_a_moved_module():
    from runner.store import MOVED

    old = {f"runner.store.{name}" for name in MOVED}
    found = [f"{module} imports {name}" for module, path in sorted(_modules().items())
             for name in _raw_imports(path) if name in old]
    assert found == []


def test_old_paths_of_moved_modules_still_import_the_same_module():
    from runner.store.queries import JobFilter  # type: ignore[import-not-found]

    import runner.store.sqlite.queries
    from runner.store.rows import JobFilter as neutral

    assert JobFilter is neutral
    import runner.store.queries  # type: ignore[import-not-found]

    assert runner.store.queries is runner.store.sqlite.queries
