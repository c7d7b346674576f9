"""python -m runner on a Redis URL whose database cannot work: one line naming it, exit 78."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest

from runner.errors import EX_CONFIG
from tests.conftest import ROOT
from tests.redis_support import REDIS_URL, new_prefix, redis_or_skip, redis_settings


def cli(settings, *args):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKER_", "RUNNER_", "REDIS_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def with_database(database: str) -> str:
    """The shared server's URL (``TEST_REDIS_URL``) naming another database."""
    return urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{database}"))


@pytest.mark.parametrize(("database", "problem"), [
    ("99", "database 99 does not exist on the server"),
    ("abc", "database 'abc' is not a number"),
])
def test_the_cli_names_a_bad_database_number_in_one_line_with_the_settings_exit_code(
        tmp_path, database, problem):
    redis_or_skip()
    settings = redis_settings(tmp_path, new_prefix(), url=with_database(database))
    done = cli(settings, "jobs")
    assert done.returncode == EX_CONFIG, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and problem in done.stderr, done.stderr
    assert "redis_url" in done.stderr and len(done.stderr.strip().splitlines()) == 1
