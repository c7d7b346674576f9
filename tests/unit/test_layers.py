"""The package map of the README holds: imports point down only and never form a cycle.

Every import counts, including those inside functions and under ``TYPE_CHECKING``:
a lazy import is still a dependency, and a cycle hidden behind one is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Lowest first. A module may import its own group and any lower layer; modules in
#: different groups of one layer are siblings and may not import each other.
LAYERS: list[dict[str, list[str]]] = [
    {"base": ["runner.errors", "runner.pass_failure", "runner.config", "runner.sections",
              "runner.service_sections",
              "runner.ids",
              "runner.event_patterns", "runner.durations", "runner.files", "runner.printable",
              "runner.flow", "runner.clock_drift",
              "runner.envfile", "runner.text_files", "runner.setting_bounds",
              "runner.section_environment", "runner.settings_validation",
              "runner.settings_environment", "runner.settings_loader",
              "runner.drivers"]},
    {"store": ["runner.store"]},
    {"task API": ["runner.runner_huey", "runner.huey_consumer", "runner.huey_api", "runner.eta",
                  "runner.result", "runner.attempt",
                  "runner.task", "runner.task_options",
                  "runner.registry", "runner.retry", "runner.execution", "runner.watchdog",
                  "runner.arguments", "runner.payload_size",
                  "runner.progress", "runner.serializers", "runner.uniqueness",
                  "runner.bulk", "runner.call_options"],
     "readmodel": ["runner.readmodel"]},
    {"scheduling": ["runner.scheduling"], "events": ["runner.events"]},
    {"worker": ["runner.worker"]},
    {"control": ["runner.control"]},
    {"entry points": ["runner", "runner.__main__", "runner.testing", "runner.cli", "tui"]},
]


def _group_of(module: str) -> tuple[int, str]:
    best: tuple[int, int, str] | None = None
    for rank, groups in enumerate(LAYERS):
        for group, prefixes in groups.items():
            for prefix in prefixes:
                if module == prefix or module.startswith(prefix + "."):
                    if best is None or len(prefix) > best[0]:
                        best = (len(prefix), rank, group)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and the README"
    return best[1], best[2]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("runner", "tui"):
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules imported anywhere in the file, resolved to module names."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import mod" imports the submodule when there is one.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {m: _imports(m, p, known) for m, p in modules.items()}
    # Importing a submodule runs its package's __init__ first, unless that package
    # is one the importing module lives in (it is initialised already).
    for module, targets in graph.items():
        for target in list(targets):
            parent = target.rpartition(".")[0]
            while parent:
                if not module.startswith(parent + "."):
                    targets.add(parent)
                parent = parent.rpartition(".")[0]
    return graph


def test_every_module_belongs_to_a_layer():
    for module in _modules():
        _group_of(module)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        rank, group = _group_of(module)
        for target in sorted(targets):
            target_rank, target_group = _group_of(target)
            if target_group != group and target_rank >= rank:
                found.append(f"{module} ({group}) imports {target} ({target_group})")
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Strongly connected components of more than one module (Tarjan)."""
    cycles: list[str] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(" <-> ".join(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_imports_point_down_only():
    assert upward_imports(_graph()) == []


def test_no_import_cycles():
    assert import_cycles(_graph()) == []


def test_the_graph_resolves_every_import_form():
    graph = _graph()
    assert "runner.store.sqlite.db" in graph["runner.store.sqlite.queries"]  # from a.b import x
    # from pkg import module
    assert "runner.store.sqlite.events" in graph["runner.store.sqlite.event_store"]
    assert "runner.store" in graph["runner.events.delivery"]  # the package's __init__ runs too
    assert "tui.screens.help" in graph["tui.app"]  # an import inside a function


def test_an_upward_import_or_a_cycle_is_reported():
    graph = {"runner.store.sqlite.db": {"runner.worker.manager"},
             "runner.worker.manager": {"runner.store.sqlite.db"},
             "runner.cli": {"runner.store.sqlite.db"}}
    assert upward_imports(graph) == [
        "runner.store.sqlite.db (store) imports runner.worker.manager (worker)"]
    assert import_cycles(graph) == ["runner.store.sqlite.db <-> runner.worker.manager"]
    siblings = {"runner.scheduling.scheduler": {"runner.events.delivery"}}
    assert upward_imports(siblings) == [
        "runner.scheduling.scheduler (scheduling) imports runner.events.delivery (events)"]
