"""python -m runner queues right after a burst: the queue that just ran stays listed."""

from __future__ import annotations

import json

from runner.store.sqlite import queries
from runner.store.states import JobState
from tests import jobs
from tests.conftest import wait_for
from tests.process.test_cli import cli


def test_a_queue_that_just_drained_its_burst_stays_listed_with_its_rate(
        huey, make_worker, settings_file):
    # Given a burst of jobs in a queue no [queues.NAME] names, run by a worker
    worker = make_worker()
    burst = [jobs.mail_record(f"mail-{n}") for n in range(5)]
    wait_for(lambda: all(queries.get_job(huey.jobs.db, r.id).state == JobState.COMPLETED
                         for r in burst), timeout=30, message="the burst to complete")
    assert worker.terminate() == 0

    # Then the queue is still listed, with nothing waiting and the burst as its rate
    done = cli(settings_file, "queues", "--json")
    assert done.returncode == 0, done.stderr
    by_name = {q["name"]: q for q in json.loads(done.stdout)["queues"]}
    assert "mail" in by_name, list(by_name)
    assert (by_name["mail"]["waiting"], by_name["mail"]["running"],
            by_name["mail"]["per_minute"]) == (0, 0, 5.0)
    # and the table's column is done/min, as the README and the dashboard call it
    header, *rows = cli(settings_file, "queues").stdout.splitlines()
    row = next(line for line in rows if line.startswith("mail"))
    column = header.index("DONE/MIN")
    assert row[column:].split()[0] == "5", (header, row)
