"""A worker refuses bad settings at start: exit 78 naming the key, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def write(tmp_path, text):
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "key"), [
    ("[worker]\ntimeout = nan\n", "[worker] timeout"),
    ("[worker]\nlease_seconds = inf\n", "[worker] lease_seconds"),
    ("[runner]\ntimezone = \"Nowhere/Special\"\n", "[runner] timezone"),
    ("[queues.mail]\nweight = 0\n", "[queues.mail] weight"),
    # numbers too large to work: threads never started, waits past threading's limit,
    # a busy timeout SQLite cannot take
    ("[worker]\nmax_concurrent_tasks = 100000000000\n",
     "[worker] max_concurrent_tasks must be at most 1024"),
    ("[worker]\npoll_interval = 1e10\n", "[worker] poll_interval must be at most 86400"),
    ("[database]\nbusy_timeout = 1e308\n", "[database] busy_timeout must be at most 86400"),
])
def test_a_worker_refuses_bad_values_at_start_with_exit_78(tmp_path, text, key):
    path = write(tmp_path, text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "--settings", str(path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 78, done.stderr
    assert key in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "jobs.db").exists()


def test_check_refuses_a_concurrency_too_large_to_run_from_the_file_or_the_environment(
        tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "runner", "--settings", str(tmp_path / "settings.toml"),
               "check"]
    write(tmp_path, "[worker]\nmax_concurrent_tasks = 100000000000\n")
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 78, done.stdout + done.stderr
    assert done.stderr == (f"error: {tmp_path / 'settings.toml'}: [worker] max_concurrent_tasks "
                           "must be at most 1024 (threads), got 100000000000\n")
    write(tmp_path, "")
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**env, "WORKER_CONCURRENCY": "99999999999999999999"})
    assert done.returncode == 78, done.stdout + done.stderr
    assert "WORKER_CONCURRENCY: [worker] max_concurrent_tasks must be at most 1024" in (
        done.stderr)


@pytest.mark.parametrize(("args", "named"), [
    (["--concurrency", "-2"], "argument --concurrency/-c: expected a whole number of at least 1"),
    (["--concurrency", "0"], "argument --concurrency/-c: expected a whole number of at least 1"),
    (["--concurrency", "100000"],
     "argument --concurrency/-c: expected a whole number of at most 1024 (threads)"),
    (["--log-level", "LOUD"], "argument --log-level: expected one of DEBUG, INFO"),
])
def test_a_bad_command_line_value_is_named_as_the_option_given(tmp_path, args, named):
    # --concurrency and --log-level are passed on as WORKER_* variables; an error must
    # still name the option typed, not a variable the user never set.
    path = write(tmp_path, "")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "--settings", str(path), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr
    assert "WORKER_" not in done.stderr and "environment" not in done.stderr
