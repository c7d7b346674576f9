"""``[runner] serializer = "json"``: payloads and results that never run code when read."""

from __future__ import annotations

from pathlib import Path

import pytest
from huey.exceptions import TaskException

from runner import emit
from runner.store.sqlite import queries
from runner.testing import drain
from tests import jobs
from tests.conftest import read_records, wait_for
from tests.json_support import payloads, write_json_settings
from tests.process.test_cli import cli


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return write_json_settings(tmp_path)


def test_a_worker_runs_json_jobs_end_to_end(huey, make_worker, record_file, settings_file):
    assert huey.settings.runner.serializer == "json"
    plain = jobs.add(2, 3)
    tupled = jobs.add((1,), (2,))
    later = jobs.add.schedule(("a", "b"), delay=0.3)
    failing = jobs.always_fails("json")
    retried = jobs.retry_twice("json")
    emit("early.bird", {"n": 7})
    payload = payloads(huey.jobs.db)
    assert payload and all(p.startswith(b"{") for p in payload)  # JSON, not pickle
    worker = make_worker()
    assert plain.get(blocking=True, timeout=15) == 5
    assert tupled.get(blocking=True, timeout=15) == (1, 2)
    assert later.get(blocking=True, timeout=15) == "ab"
    assert retried.get(blocking=True, timeout=15) == 3
    with pytest.raises(TaskException, match="always fails json"):
        failing.get(blocking=True, timeout=15)
    wait_for(lambda: queries.get_job(huey.jobs.db, failing.id).state == "dead",
             message="failing job dead")
    assert queries.get_job(huey.jobs.db, failing.id).attempt == 3
    assert len(queries.job_errors(huey.jobs.db, failing.id)) == 3
    wait_for(lambda: any(r.startswith("early 7") for r in read_records(record_file)),
             message="event handled")
    # A schedule fires (with its args and kwargs) and an extra run can be asked for
    done = cli(settings_file, "schedules", "run-now", "async_hourly")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: huey.jobs.db.query(
        "SELECT 1 FROM runner_job WHERE schedule = 'async_hourly' AND state = 'completed'"),
        message="scheduled job done")
    wait_for(lambda: huey.jobs.db.query(
        "SELECT 1 FROM runner_job WHERE schedule = 'every_second' AND state = 'completed'"),
        message="cron schedule fired")
    assert worker.terminate() == 0
    output = worker.output()
    assert "cannot read job" not in output and "JSON cannot carry" not in output


def test_cli_enqueue_and_result_under_json(huey, settings_file):
    done = cli(settings_file, "enqueue", "add", "--args", "[[1], [2]]")
    assert done.returncode == 0, done.stderr
    drain()
    job_id = done.stdout.strip()
    assert payloads(huey.jobs.db)[0].startswith(b"{")
    assert huey.result(job_id) == [1, 2]
