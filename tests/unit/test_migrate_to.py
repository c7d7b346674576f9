"""``python -m runner migrate-to``: a SQLite file's waiting jobs, schedules and recent
history arrive in PostgreSQL once, however often the copy runs."""

from __future__ import annotations

import time

import pytest

from runner.cli import main
from runner.store.job_rows import Ack
from runner.store.postgres import PgDatabase, PostgresStore
from runner.store.postgres.schema import prepare
from runner.store.schedule_rows import SyncItem
from runner.store.states import JobState
from tests.conformance.helpers import job
from tests.postgres_support import fresh_schema

DAY = 86400.0


@pytest.fixture
def target():
    with fresh_schema() as url:
        db = PgDatabase(url)
        prepare(db)
        yield url, PostgresStore(db)
        db.close()


def _fill(store, now: float) -> dict[str, str]:  # noqa: ANN001 - the file's store
    waiting, later, running, done, old = (job(now), job(now + 3600), job(now), job(now),
                                          job(now - 30 * DAY))
    store.enqueue([old], now=now - 30 * DAY)
    store.claim(now=now - 30 * DAY, owner="w:1:1", lease_seconds=30, want=1)
    store.complete([Ack(old.id, 1, now - 30 * DAY, now - 30 * DAY)])
    store.enqueue([done, running], now=now)
    store.claim(now=now, owner="w:1:1", lease_seconds=30, want=2)
    store.complete([Ack(done.id, 1, now, now + 1, results=((done.id, b"42"),))])
    store.enqueue([waiting, later], now=now)
    store.sync_schedules([SyncItem("nightly", "tests.jobs.add", "0 3 * * *", "UTC", "once",
                                   "allow", True, now + 600)], now=now)
    return {"waiting": waiting.id, "later": later.id, "running": running.id,
            "done": done.id, "old": old.id}


def test_waiting_jobs_schedules_and_recent_history_are_copied_once(huey, settings_file,
                                                                     target, capsys):
    url, pg = target
    ids = _fill(huey.jobs.store, time.time())
    assert main(["--settings", str(settings_file), "migrate-to", url]) == 0
    states = {name: pg.get_job(i).state for name, i in ids.items() if name != "old"}
    assert states == {"waiting": JobState.AVAILABLE, "later": JobState.SCHEDULED,
                      "running": JobState.AVAILABLE, "done": JobState.COMPLETED}
    assert pg.count_jobs() == 4  # the job finished 30 days ago stayed behind
    assert pg.stored_result(ids["done"]) == b"42"
    assert [s.name for s in pg.list_schedules()] == ["nightly"]
    assert pg.get_job(ids["running"]).lease_owner is None
    capsys.readouterr()

    assert main(["--settings", str(settings_file), "migrate-to", url]) == 0
    assert "jobs: 4 read, 0 new, 4 already there" in capsys.readouterr().out
    assert pg.count_jobs() == 4 and pg.count_schedules() == 1
    assert pg.claim(now=time.time(), owner="pg:1:1", lease_seconds=30, want=10).claimed


def test_a_file_with_running_workers_is_not_copied_without_force(huey, settings_file, target,
                                                                  capsys):
    url, pg = target
    huey.jobs.store.enqueue([job(time.time())], now=time.time())
    huey.jobs.store.register("elsewhere:1:1", concurrency=1, queues=())
    assert main(["--settings", str(settings_file), "migrate-to", url]) != 0
    assert "still run on this file" in capsys.readouterr().err
    assert pg.count_jobs() == 0
    assert main(["--settings", str(settings_file), "migrate-to", url, "--force"]) == 0
    assert pg.count_jobs() == 1


def test_a_url_that_is_not_postgresql_is_refused(huey, settings_file, capsys):
    assert main(["--settings", str(settings_file), "migrate-to", "mysql://x/y"]) == 78
    assert "is not a PostgreSQL URL" in capsys.readouterr().err


def test_a_paused_queue_stays_paused_on_postgresql(huey, settings_file, target):
    # Given a queue paused on the file (its jobs must not run), and a task resumed by hand
    url, pg = target
    now = time.time()
    store = huey.jobs.store
    store.enqueue([job(now, queue="reports")], now=now)
    store.set_pause("queue", "reports", True, now=now, by="alice")
    store.set_pause("task", "tests.jobs.add", False, now=now, by="bob")
    # When the file is copied over
    assert main(["--settings", str(settings_file), "migrate-to", url]) == 0
    # Then PostgreSQL holds the same states, and no worker there claims the paused queue
    assert [(p.kind, p.name, p.paused, p.changed_by) for p in pg.list_pauses()] == [
        ("queue", "reports", True, "alice"), ("task", "tests.jobs.add", False, "bob")]
    assert pg.claim(now=now, owner="pg:1:1", lease_seconds=30, want=10).claimed == []
