"""One owner of the job state machine, and of SQL.

The job states are spelled only in ``runner/store/states.py`` (the enum and the
sets derived from it), each backend's transitions
(``runner/store/sqlite/transitions/``, ``runner/store/postgres/transitions/``:
every write to ``runner_job``) and the Lua functions of the Redis backend (the
same transitions). SQL is written only under ``runner/store/``. Everything else
names a state as ``JobState.DEAD`` and reaches the data through store functions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from runner.store.states import JobState

ROOT = Path(__file__).resolve().parents[2]
#: The states, and each backend's state machine (the only code writing ``runner_job``).
BACKEND_TRANSITIONS = [sorted((ROOT / "runner/store/sqlite/transitions").glob("*.py")),
                       sorted((ROOT / "runner/store/postgres/transitions").glob("*.py"))]
TRANSITIONS = {path for paths in BACKEND_TRANSITIONS for path in paths}
STATE_OWNERS = {ROOT / "runner/store/states.py", *TRANSITIONS,
                # The same transitions as Redis Lua functions (a backend's state machine).
                *(ROOT / "runner/store/redis" / name
                  for name in ("lua_jobs.py", "lua_schedules.py", "lua_events.py", "lua_workers.py",
                               "lua_flow.py", "lua_limits.py", "lua_transfer.py", "scripts.py"))}
STATES = {s.value for s in JobState}
_QUOTED_STATE = re.compile(r"'(" + "|".join(sorted(STATES)) + r")'")
_SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|"
                  r"DELETE\s+FROM|CREATE\s+(UNIQUE\s+)?(TABLE|INDEX)|PRAGMA\s+\w+)\b",
                  re.IGNORECASE | re.DOTALL)
_WRITES_JOBS = re.compile(r"\b(UPDATE\s+runner_job\s+SET|INSERT\s+(OR\s+\w+\s+)?INTO\s+"
                          r"runner_job\b|DELETE\s+FROM\s+runner_job\b)", re.IGNORECASE)


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if ROOT in path.parents else path.name


def _sources(*packages: str) -> list[Path]:
    return [path for package in packages for path in sorted((ROOT / package).rglob("*.py"))]


def _strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module with their line.

    Left out: documentation, widget ids, and the words of display tables and
    message text (dict displays, f-strings) unless they hold SQL or a quoted state.
    """
    tree = ast.parse(path.read_text(), str(path))
    # A bare string statement is documentation (docstrings, attribute docstrings).
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    widget_ids = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.keyword) and node.arg == "id"}
    # Words of a display table (labels, styles) and of message text are not states.
    shown = {id(inner) for node in ast.walk(tree) if isinstance(node, (ast.Dict, ast.JoinedStr))
             for inner in ast.walk(node) if isinstance(inner, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings and id(node) not in widget_ids
            and (id(node) not in shown or _SQL.search(node.value)
                 or _QUOTED_STATE.search(node.value))]


def state_literals(paths: list[Path]) -> list[str]:
    """Places that spell a job state: a string that is one, or SQL that quotes one."""
    found = []
    for path in paths:
        if path in STATE_OWNERS:
            continue
        for line, text in _strings(path):
            if text in STATES or _QUOTED_STATE.search(text):
                found.append(f"{_name(path)}:{line}: {text!r}")
    return found


def sql_outside_store(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        if (ROOT / "runner/store") in path.parents:
            continue
        for line, text in _strings(path):
            if _SQL.search(text):
                found.append(f"{_name(path)}:{line}: {text[:60]!r}")
    return found


def job_writes_outside_transitions(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        if path in STATE_OWNERS:
            continue
        for line, text in _strings(path):
            if _WRITES_JOBS.search(text):
                found.append(f"{_name(path)}:{line}: {text[:60]!r}")
    return found


def test_no_state_literal_outside_the_state_machine():
    assert state_literals(_sources("runner", "tui")) == []


def test_no_sql_outside_the_store():
    assert sql_outside_store(_sources("runner", "tui")) == []


def test_only_the_transitions_write_jobs():
    assert job_writes_outside_transitions(_sources("runner", "tui")) == []


def test_the_failed_attempt_insert_is_written_once_per_backend():
    everywhere = "".join(p.read_text() for p in _sources("runner"))
    assert everywhere.count("INSERT INTO runner_job_error") == len(BACKEND_TRANSITIONS)
    for paths in BACKEND_TRANSITIONS:
        assert "".join(p.read_text() for p in paths).count("INSERT INTO runner_job_error") == 1, \
            paths


def test_the_scans_find_what_they_look_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""Doc saying dead."""\n'
                      'x = job.state == "dead"\n'
                      'q = "SELECT id FROM runner_job WHERE state = \'executing\'"\n'
                      'w = "UPDATE runner_job SET reason = ?"\n'
                      'widget = Sparkline(id="completed")\n'
                      'labels = {"dead": "dead",\n'
                      '          "x": "SELECT 1 FROM runner_job WHERE state=\'dead\'"}\n')
    assert sorted(f.split(": ", 1)[0] for f in state_literals([sample])) == [
        "sample.py:2", "sample.py:3", "sample.py:7"]
    assert len(sql_outside_store([sample])) == 3
    assert len(job_writes_outside_transitions([sample])) == 1
