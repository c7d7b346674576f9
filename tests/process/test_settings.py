"""Bad settings stop every front end the same way: exit 78 naming the file, section and key.

Each case is run through ``run.py``, ``python -m tui`` and ``python -m runner
check`` as real processes, as an operator starts them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: (settings text, what the message must say); every case is also a unit test of the loader.
CASES = [
    ('[tui]\nrefresh = "fast"\n', "[tui] refresh: expected a number, got 'fast'"),
    ("[tui]\nrefesh = 2\n", "[tui]: unknown key 'refesh'"),
    ("[tui]\nrefresh = 0\n", "[tui] refresh must be a number of seconds greater than 0"),
    ('[logging]\nrotation = "daily"\n', "[logging] rotation must be one of size, watched, none"),
    ("[health]\nquick_chek = true\n", "[health]: unknown key 'quick_chek'"),
    ('[events]\ndedupe_window = "1h"\n', "[events] dedupe_window: expected a number"),
    ('[schedules.nightly]\nenabled = "no"\n',
     "[schedules.nightly] enabled: expected true or false"),
    ('[metrics]\nlisten = "9100"\n', "[metrics] listen must be 'host:port'"),
    ("[queues.mail]\nweigth = 2\n", "[queues.mail]: unknown key 'weigth'"),
    ('[queues.mail]\nconcurrency = "2"\n', "[queues.mail] concurrency: expected a whole number"),
    ('[queues.mail]\nrate_limit = "fast"\n', "[queues.mail] rate_limit 'fast' is not a rate"),
    ('[tasks.mail]\nconcurrency = "1"\n', "[tasks.mail] concurrency: expected a whole number"),
    ('[tasks.mail]\nrate_limit = "often"\n', "[tasks.mail] rate_limit 'often' is not a rate"),
]

FRONT_ENDS = {
    "run.py": lambda path: [sys.executable, str(ROOT / "run.py"), "--settings", str(path)],
    "python -m tui": lambda path: [sys.executable, "-m", "tui", "--settings", str(path)],
    "python -m runner check": lambda path: [sys.executable, "-m", "runner", "--settings",
                                            str(path), "check"],
}


#: The cases each front end is started with (a process costs a second or two).
IN_PROCESS = [CASES[0], CASES[1], CASES[3]]


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_a_bad_setting_exits_78_naming_file_section_and_key(front_end, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    env["PYTHONPATH"] = str(ROOT)
    for number, (text, expected) in enumerate(IN_PROCESS):
        path = tmp_path / f"bad{number}.toml"
        path.write_text(text)
        done = subprocess.run(FRONT_ENDS[front_end](path), cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        output = done.stdout + done.stderr
        assert done.returncode == 78, (front_end, text, output)
        assert str(path) in output and expected in output, (front_end, text, output)
        assert "Traceback" not in output, (front_end, text, output)
    assert not (tmp_path / "jobs.db").exists()  # refused before anything was opened


def refused_with_variable(front_end: str, tmp_path: Path, **variables: str) -> str:
    """What ``front_end`` prints, refusing an empty settings file with ``variables`` set in
    its environment (exit 78, no traceback, no database made)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    env.update(PYTHONPATH=str(ROOT), **variables)
    path = tmp_path / "settings.toml"
    path.write_text("")
    done = subprocess.run(FRONT_ENDS[front_end](path), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert done.returncode == 78, output
    assert "Traceback" not in output and not (tmp_path / "jobs.db").exists(), output
    return output


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_a_malformed_queue_variable_exits_78_naming_it(front_end, tmp_path: Path):
    output = refused_with_variable(front_end, tmp_path, WORKER_QUEUE_CONCURRENCY="emails")
    assert "WORKER_QUEUE_CONCURRENCY: 'emails' is not NAME=VALUE" in output, output


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_a_misspelt_worker_variable_exits_78_naming_it(front_end, tmp_path: Path):
    # A typo must not leave the worker running with the file's value unnoticed.
    output = refused_with_variable(front_end, tmp_path, WORKER_CONCURENCY="4")
    assert "WORKER_CONCURENCY: unknown variable" in output, output
