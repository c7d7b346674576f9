"""What a worker's status says of a suspect it isolates (health reads it)."""

from __future__ import annotations

from types import SimpleNamespace

from runner.config import Settings
from runner.store.job_storage import DRAINING
from runner.worker.stalls import StallWatch


def status_while_isolating(job: str, seconds: float) -> str | None:
    storage = SimpleNamespace(isolating=(job, seconds))
    return StallWatch(None, storage, Settings()).status()  # type: ignore[arg-type]


def test_a_suspect_running_alone_is_named():
    assert status_while_isolating("j1", 30) == (
        "suspect job j1 runs alone (30s): the worker claims nothing else")


def test_a_suspect_waiting_for_the_jobs_in_flight_reads_as_such_not_as_a_job_named_draining():
    said = status_while_isolating(DRAINING, 30)
    assert said == ("a suspect job waits to run alone (30s): the worker finishes its jobs "
                    "first and claims nothing else")


def test_a_short_isolation_is_not_reported():
    assert status_while_isolating("j1", 1) is None
