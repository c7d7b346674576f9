"""The installed ``jobrunner`` command: the worker, the dashboard and the CLI in one."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from setuptools import find_packages

import runner.cli
from tests.redis_support import new_prefix, redis_or_skip, redis_settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "jobrunner"


def _jobrunner(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_SETTINGS"}
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def test_console_script_entry_point_resolves_to_the_cli():
    (script,) = entry_points(group="console_scripts", name="jobrunner")
    assert script.load() is runner.cli.jobrunner


def test_jobrunner_help_lists_worker_dashboard_and_cli_commands(tmp_path):
    result = _jobrunner("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: jobrunner")
    for command in ("run", "tui", "jobs", "enqueue", "schedules", "events", "health"):
        assert f"\n    {command} " in result.stdout


def test_jobrunner_run_and_tui_take_their_own_options(tmp_path):
    run = _jobrunner("run", "--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "--scheduler-only" in run.stdout
    tui = _jobrunner("tui", "--help", cwd=tmp_path)
    assert tui.returncode == 0, tui.stderr
    assert "--read-only" in tui.stdout
    # Their usage and error lines name the command typed, not run.py or python -m tui
    assert run.stdout.startswith("usage: jobrunner run ")
    assert tui.stdout.startswith("usage: jobrunner tui ")
    missing = _jobrunner("--settings", "missing.toml", "run", cwd=tmp_path)
    assert missing.returncode == 78
    assert missing.stderr.startswith("jobrunner run: missing.toml: settings file not found")


def _task_count(output: str) -> int:
    return int(output.split(" tasks,")[0].rsplit(" ", 1)[1])


def test_jobrunner_imports_task_modules_of_the_current_directory(tmp_path):
    (tmp_path / "mytasks.py").write_text(
        "from runner import task\n\n@task\ndef hello():\n    return 1\n")
    (tmp_path / "none.toml").write_text('[runner]\nimports = []\ndatabase = "jobs.db"\n')
    (tmp_path / "settings.toml").write_text(
        '[runner]\nimports = ["mytasks"]\ndatabase = "jobs.db"\n')
    builtin = _jobrunner("--settings", "none.toml", "check", cwd=tmp_path)
    assert builtin.returncode == 0, builtin.stderr
    result = _jobrunner("--settings", "settings.toml", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _task_count(result.stdout) == _task_count(builtin.stdout) + 1


def test_global_settings_option_reaches_the_worker(tmp_path):
    (tmp_path / "bad.toml").write_text("[worker]\nmax_concurrent_tasks = 'many'\n")
    result = _jobrunner("--settings", "bad.toml", "run", cwd=tmp_path)
    assert result.returncode == 78
    assert "max_concurrent_tasks" in result.stderr


def test_example_tasks_are_not_installed_as_a_top_level_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(str(ROOT), include=include)
    assert "tasks" not in packages
    assert {"runner", "runner.store", "runner.worker", "tui"} <= set(packages)


def test_a_project_module_named_redis_does_not_stand_in_for_the_driver(tmp_path):
    # Given a project with a helper module of its own called redis.py, where jobrunner runs
    redis_or_skip()
    (tmp_path / "redis.py").write_text("raise ImportError(\"the project's own redis.py\")\n")
    settings = redis_settings(tmp_path, new_prefix())
    # When a command opens the Redis backend there
    result = _jobrunner("--settings", str(settings), "jobs", cwd=tmp_path)
    # Then the backend has the real driver: it finds no jobs under the new prefix, and says so
    assert "no jobs database here" in result.stderr, result.stderr
    assert "project's own" not in result.stderr, result.stderr


@pytest.mark.parametrize("module", ["runner", "tui"])
def test_python_m_in_a_project_with_a_module_named_redis_keeps_the_driver(tmp_path, module):
    # Given a project with a helper module of its own called redis.py, where `python -m
    # runner` or `python -m tui` runs (Python puts that directory first on the import path)
    redis_or_skip()
    (tmp_path / "redis.py").write_text("raise ImportError(\"the project's own redis.py\")\n")
    settings = redis_settings(tmp_path, new_prefix())
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_SETTINGS"}
    # When a command opens the Redis backend there
    command = ["--settings", str(settings)] + (["jobs"] if module == "runner" else [])
    result = subprocess.run([sys.executable, "-m", module, *command],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    # Then the backend has the real driver, and the project's module is still its own
    assert "no jobs database here" in result.stderr, result.stderr
    assert "project's own" not in result.stderr, result.stderr


@pytest.mark.parametrize("module", ["runner", "tui"])
def test_python_m_in_a_deleted_working_directory_still_answers(tmp_path, module):
    gone = tmp_path / "gone"
    gone.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_SETTINGS"}
    script = (f"import os, runpy, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
              f"sys.argv = [{module!r}, '--help']; runpy.run_module({module!r}, "
              "run_name='__main__', alter_sys=True)")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "usage:" in result.stdout, result.stderr
