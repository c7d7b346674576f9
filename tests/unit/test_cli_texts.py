"""What the command line says of itself: help texts, and which settings a command used."""

from __future__ import annotations

import pytest

from runner.cli import main as cli
from runner.config import OVERRIDES
from runner.worker.main import build_parser as worker_parser
from tests.conftest import ROOT


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
