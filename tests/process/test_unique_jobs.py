"""Unique jobs hold when eight producer processes enqueue the same key at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runner.settings_loader import load_settings
from runner.store.sqlite import queries
from runner.store.sqlite.db import open_database
from runner.store.sqlite.schema import prepare_database
from tests.conftest import ROOT, wait_for, write_settings

PRODUCERS = 8

PRODUCER = """
import os, sys, time
from tests import jobs
open(f"{sys.argv[1]}.ready.{os.getpid()}", "w").close()  # imported: ready to start
while not os.path.exists(sys.argv[1]):
    time.sleep(0.001)
ids = set()
for n in range(10):
    ids.add(jobs.unique_report(42).id)
    ids.add(jobs.per_user("alice", n).id)
    ids.update(r.id for r in list(jobs.unique_report.map([43, 43])))
print(" ".join(sorted(ids)))
"""


def test_eight_producer_processes_write_one_job_per_key(tmp_path: Path):
    settings = write_settings(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_SETTINGS": str(settings)}
    go = tmp_path / "go"
    producers = [subprocess.Popen([sys.executable, "-c", PRODUCER, str(go)], cwd=tmp_path,
                                  env=env, stdout=subprocess.PIPE, text=True)
                 for _ in range(PRODUCERS)]
    # Released together once every one has imported.
    wait_for(lambda: len(list(tmp_path.glob("go.ready.*"))) == PRODUCERS, timeout=60,
             message="every producer to import")
    go.touch()
    out = [p.communicate(timeout=120)[0] for p in producers]
    assert all(p.returncode == 0 for p in producers), out
    db = open_database(tmp_path / "jobs.db", load_settings(settings, environ={}).database)
    prepare_database(db)
    rows = queries.list_jobs(db, limit=100)
    assert sorted(json.dumps(json.loads(r.args or "")["args"]) for r in rows) == [
        "[\"alice\", 0]", "[42]", "[43]"]
    # Every producer was handed the ids of those three jobs, and no other.
    assert {frozenset(o.split()) for o in out} == {frozenset(r.id for r in rows)}
