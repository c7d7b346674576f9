"""Rows edited by hand: a worker deals with a bad one once and keeps working."""

from __future__ import annotations

from runner.store.sqlite import queries
from tests import jobs
from tests.conftest import wait_for


def test_a_non_numeric_run_at_is_buried_once_with_a_reason(huey, make_worker):
    db = huey.jobs.db
    bad = jobs.add(1, 2)
    db.write(lambda c: c.execute("UPDATE runner_job SET run_at = 'tomorrow' WHERE id = ?",
                                 (bad.id,)))
    worker = make_worker()
    wait_for(lambda: queries.get_job(db, bad.id).state == "dead", message="bad row buried")
    assert queries.get_job(db, bad.id).reason == "run_at is not a number: 'tomorrow'"
    good = jobs.add(2, 3)
    assert good.get(blocking=True, timeout=15) == 5
    assert worker.terminate() == 0
    output = worker.output()
    assert "Traceback" not in output
    assert output.count("run_at is not a number") == 1
