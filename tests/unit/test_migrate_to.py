"""``python -m runner migrate-to``: a SQLite file's waiting jobs, schedules and recent
history arrive in PostgreSQL once, however often the copy runs."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from runner.cli import main
from runner.errors import EX_CANTCREAT, EX_TEMPFAIL, QueueFull
from runner.store.job_rows import Ack, QueueBound
from runner.store.postgres import PgDatabase, PostgresStore
from runner.store.postgres.schema import prepare
from runner.store.rows import JobFilter
from runner.store.schedule_rows import SyncItem
from runner.store.states import JobState
from tests.conformance.helpers import failure, job
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
    assert main(["--settings", str(settings_file), "migrate-to", url]) == EX_TEMPFAIL
    assert "still run on this file" in capsys.readouterr().err
    assert pg.count_jobs() == 0
    assert main(["--settings", str(settings_file), "migrate-to", url, "--force"]) == 0
    assert pg.count_jobs() == 1


def test_a_worker_of_this_host_whose_process_is_gone_does_not_hold_the_copy_back(
        huey, settings_file, target, capsys):
    # Given a worker of this host killed (SIGKILL) a moment ago: its row still says running
    url, pg = target
    huey.jobs.store.enqueue([job(time.time())], now=time.time())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    huey.jobs.store.register(f"{socket.gethostname()}:{gone.pid}:1", concurrency=1, queues=())
    # When the file is copied, without --force
    # Then the copy goes ahead: nothing runs on the file any more
    assert main(["--settings", str(settings_file), "migrate-to", url]) == 0, \
        capsys.readouterr().err
    assert pg.count_jobs() == 1


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


def _counted(store, now: float) -> tuple[list, dict]:  # noqa: ANN001 - a store
    snapshot = store.read_snapshot(now=now)
    return snapshot.totals, snapshot.backpressure


def _with_crashes(counted: tuple[list, dict], crashed: int) -> tuple[list, dict]:
    """The counters of ``_fill``'s file once ``crashed`` jobs of its default queue were
    charged a crash."""
    totals = [replace(t, failed=t.failed + crashed, retried=t.retried + crashed)
              if t.queue == "default" else t for t in counted[0]]
    return totals, counted[1]


def test_the_lifetime_counters_arrive_once_with_the_copy(huey, settings_file, target):
    # Given a file that counted completions (one a month old, its job not copied), failed
    # attempts, a retry, a dead job, a cancel and a job its full queue refused
    url, pg = target
    file = huey.jobs.store
    now = time.time()
    _fill(file, now)
    flaky, doomed = job(now, max_attempts=2), job(now + 7200)
    file.enqueue([flaky], now=now)
    [claimed] = file.claim(now=now, owner="w:1:1", lease_seconds=30, want=1).claimed
    file.retry(flaky.id, claimed.attempt, failure(), worker="w:1:1", now=now, run_at=now,
               reason="retrying")
    [claimed] = file.claim(now=now, owner="w:1:1", lease_seconds=30, want=1).claimed
    file.bury(flaky.id, claimed.attempt, failure(), worker="w:1:1", now=now, reason="dead")
    file.enqueue([doomed], now=now)
    file.cancel_jobs([doomed.id], now=now)
    strict = {"strict": QueueBound(1, "reject")}
    file.enqueue([job(now, queue="strict")], now=now, bounds=strict)
    with pytest.raises(QueueFull):
        file.enqueue([job(now, queue="strict")], now=now, bounds=strict)
    counted = _with_crashes(_counted(file, now), file.count_jobs(JobFilter(state="executing")))
    assert counted[0] and counted[1]["strict"] == (1, 0)

    # When the file is copied, Then PostgreSQL counts what the file counted, and the
    # crash charged to each job its stopped workers left running (a failed attempt, and
    # the job requeued)
    assert main(["--settings", str(settings_file), "migrate-to", url]) == 0
    assert _counted(pg, now) == counted
    # and a second copy counts nothing twice
    assert main(["--settings", str(settings_file), "migrate-to", url]) == 0
    assert _counted(pg, now) == counted

    # and what PostgreSQL's workers count adds to it
    pg.enqueue([job(now)], now=now)
    before, after = ({(t.task, t.queue): t.enqueued for t in totals}
                     for totals in (counted[0], _counted(pg, now)[0]))
    assert after == {**before, ("tests.jobs.add", "default"): before[
        ("tests.jobs.add", "default")] + 1}


def test_a_database_holding_jobs_of_its_own_is_refused_in_one_line(huey, settings_file,
                                                                   target, capsys):
    # Given a PostgreSQL database a worker already uses
    url, pg = target
    now = time.time()
    huey.jobs.store.enqueue([job(now)], now=now)
    pg.enqueue([job(now)], now=now)
    # When a file is copied into it, Then nothing merges into it
    assert main(["--settings", str(settings_file), "migrate-to", url]) == EX_CANTCREAT
    err = capsys.readouterr().err
    assert "holds jobs of its own" in err and len(err.strip().splitlines()) == 1
    assert pg.count_jobs() == 1


def test_log_records_arrive_once(huey, settings_file, target):
    url, pg = target
    now = time.time()
    file = huey.jobs.store
    file.write_logs([(now - 1, logging.INFO, "tests.jobs", "adding", "job-1", "tests.jobs.add",
                      "w:1:1"), (now, logging.WARNING, "runner.worker", "a worker line", None,
                                 None, "w:1:1")])
    assert main(["--settings", str(settings_file), "migrate-to", url]) == 0
    file.write_logs([(now + 1, logging.INFO, "tests.jobs", "later", None, None, "w:1:1")])
    assert main(["--settings", str(settings_file), "migrate-to", url]) == 0

    def seen(store) -> list[tuple]:  # noqa: ANN001 - a store
        return [(r.created_at, r.level, r.logger, r.message, r.job_id, r.task, r.worker)
                for r in store.read_logs(limit=10)]

    assert seen(pg) == seen(file) and len(seen(pg)) == 3
