"""What the command line says of itself: help texts, and which settings a command used."""

from __future__ import annotations

import pytest

from runner.cli import main as cli
from runner.settings_environment import OVERRIDES
from runner.worker.main import build_parser as worker_parser
from tests.conftest import ROOT


@pytest.fixture
def no_settings_file(monkeypatch, tmp_path):
    """A working directory without settings.toml, no service environment file."""
    monkeypatch.setenv("RUNNER_ENV_FILE", "")
    monkeypatch.delenv("RUNNER_SETTINGS", raising=False)
    monkeypatch.delenv("RUNNER_DATABASE", raising=False)
    monkeypatch.chdir(tmp_path)


def _help(capsys, *command: str) -> str:
    with pytest.raises(SystemExit) as done:
        cli([*command, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # as read, whatever the wrapping


@pytest.mark.parametrize(("verb", "taken"), [
    ("retry", "dead, retrying, cancelled"),
    ("discard", "available, scheduled, retrying, dead"),
    ("cancel", "available, scheduled, retrying, executing"),
])
def test_each_bulk_action_says_which_jobs_it_takes_without_a_state(capsys, verb, taken):
    text = _help(capsys, verb)
    assert f"(without it: {taken} jobs)" in text
    assert "retry without it" not in text


@pytest.mark.parametrize("command", [["queues"], ["queues", "list"]])
def test_queues_json_help_describes_the_object_it_prints(capsys, command):
    text = _help(capsys, *command)
    assert '{"queues": [...], "paused_tasks": [...]}' in text
    assert "as a list" not in text


def test_the_worker_help_lists_every_environment_override_and_what_sighup_reloads():
    text = " ".join(worker_parser().format_help().split())
    for variable in [*OVERRIDES, "WORKER_QUEUE_<KEY>", "WORKER_TASK_<KEY>"]:
        assert variable in text
    reloads = text.split("SIGHUP", 1)[1].split("systemd:", 1)[0]
    assert "max_memory_mb" in reloads and "min_free_disk_mb" in reloads


def test_the_example_settings_file_lists_every_environment_override():
    header = " ".join(line.lstrip("# ") for line in
                      (ROOT / "settings.toml").read_text().split("\n\n", 1)[0].splitlines())
    for variable in [*OVERRIDES, "WORKER_QUEUE_<KEY>", "WORKER_TASK_<KEY>"]:
        assert variable in header


def test_check_without_a_settings_file_says_none_was_found_and_where_it_looked(
        no_settings_file, tmp_path, capsys):
    assert cli(["check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: no settings file (none named by --settings or RUNNER_SETTINGS, "
                          f"no settings.toml in {tmp_path}): built-in defaults, "), out
    assert "found via" not in out


def test_a_command_without_a_settings_file_says_none_was_found(no_settings_file, tmp_path,
                                                               capsys):
    assert cli(["jobs"]) == 73
    err = capsys.readouterr().err
    assert (f"with no settings file (none named by --settings or RUNNER_SETTINGS, no "
            f"settings.toml in {tmp_path}): built-in defaults;") in err, err
    assert "found via" not in err
    assert cli(["health"]) == 1
    out = capsys.readouterr().out
    assert "with no settings file (none named by --settings" in out and "found via" not in out
