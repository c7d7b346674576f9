"""A dead worker's started attempts are charged; the jobs it only claimed go back untouched."""

from __future__ import annotations

import socket

from runner.store.sqlite import queries
from runner.store.sqlite.running_file import RunningFile, read_started, running_path
from runner.store.sqlite.workers import recover_orphans
from tests import jobs

#: A worker of this host whose process is gone (pid far beyond any live one).
DEAD = f"{socket.gethostname()}:4194999:1"


def test_slots_hold_started_attempts_until_they_settle(tmp_path):
    database = tmp_path / "jobs.db"
    running = RunningFile(running_path(database, DEAD))
    running.started("a", 1)
    running.started("b", 3)
    running.settled(["a"])
    running.started("c", 2)  # reuses the slot "a" left
    assert read_started(database, DEAD) == {("b", 3), ("c", 2)}
    assert running.path.stat().st_mode & 0o777 == 0o600
    running.close()
    assert read_started(database, DEAD) is None


def test_recovery_charges_only_the_attempts_the_dead_worker_started(huey):
    storage = huey.jobs
    ran, waited = jobs.add(1, 1), jobs.add(2, 2)
    storage.owner = DEAD
    claimed = {c.id: c for c in storage.claim_due(2)}
    running = RunningFile(running_path(storage.db.path, DEAD))
    running.started(ran.id, claimed[ran.id].attempt)

    recovery = recover_orphans(storage.db, crash_limit=3)

    assert sorted(recovery.requeued) == sorted([ran.id, waited.id])
    started = queries.get_job(storage.db, ran.id)
    assert (started.state, started.attempt, started.crashes) == ("available", 1, 1)
    untouched = queries.get_job(storage.db, waited.id)
    assert (untouched.state, untouched.attempt, untouched.crashes) == ("available", 0, 0)
    assert queries.job_errors(storage.db, waited.id) == []
    assert read_started(storage.db.path, DEAD) is None  # forgotten once recovered
    running.close(remove=False)


def test_without_a_running_file_every_held_attempt_is_charged(huey):
    storage = huey.jobs
    first, second = jobs.add(1, 1), jobs.add(2, 2)
    storage.owner = DEAD
    storage.claim_due(2)
    recover_orphans(storage.db, crash_limit=3)
    for result in (first, second):
        row = queries.get_job(storage.db, result.id)
        assert (row.state, row.attempt, row.crashes) == ("available", 1, 1)
