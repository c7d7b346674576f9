"""A queue bound holds exactly when several processes enqueue at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runner.config import load_settings
from runner.store.sqlite import queries
from runner.store.sqlite.db import open_database
from tests.conftest import ROOT, write_settings

PRODUCER = """
import sys
from runner.errors import QueueFull
from tests import jobs
accepted = 0
for n in range(int(sys.argv[1])):
    try:
        jobs.add(1, n)
        accepted += 1
    except QueueFull:
        pass
print(accepted)
"""


def test_concurrent_producers_never_overshoot_the_bound(tmp_path: Path):
    settings = write_settings(tmp_path, worker={"queue_size": 150})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_SETTINGS": str(settings)}
    producers = [subprocess.Popen([sys.executable, "-c", PRODUCER, "100"], cwd=tmp_path,
                                  env=env, stdout=subprocess.PIPE, text=True)
                 for _ in range(4)]
    accepted = [int(p.communicate(timeout=120)[0].split()[-1]) for p in producers]
    assert all(p.returncode == 0 for p in producers)
    db = open_database(tmp_path / "jobs.db", load_settings(settings, environ={}).database)
    assert sum(accepted) == 150
    assert queries.count_jobs(db) == 150
    assert db.query("SELECT waiting FROM runner_queue WHERE queue = 'default'") == [(150,)]
