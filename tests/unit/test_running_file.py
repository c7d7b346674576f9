"""A dead worker's started attempts are charged; the jobs it only claimed go back untouched,
as do those a live worker holds in the file but does not run (a file restored from a backup)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from runner.attempt import Attempt
from runner.errors import DatabaseLocked
from runner.store.job_rows import Ack, Failed, FailureInfo
from runner.store.sqlite import queries
from runner.store.sqlite.running_file import (
    RunningFile,
    read_kept_outcomes,
    read_started,
    running_dir,
    running_path,
)
from runner.store.sqlite.workers import forget_stale_files, recover_orphans
from tests import jobs
from tests.conftest import WORKER_DEFAULTS

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


def test_a_live_worker_is_charged_only_for_attempts_it_still_runs_when_their_lease_expires(huey):
    # Given this live worker holding three jobs in a file restored from a backup: one it
    # still runs (its outcome not written), one it finished since (written to the old
    # file), and one another live worker of this host finished since
    storage = huey.jobs
    me = f"{socket.gethostname()}:{os.getpid()}:1"
    other = f"{socket.gethostname()}:{os.getppid()}:1"
    unwritten, finished, elsewhere = jobs.add(1, 1), jobs.add(2, 2), jobs.add(3, 3)
    storage.owner = me
    claimed = {c.id: c for c in storage.claim_due(2)}
    storage.owner = other
    claimed.update((c.id, c) for c in storage.claim_due(1))
    mine = RunningFile(running_path(storage.db.path, me))
    theirs = RunningFile(running_path(storage.db.path, other))
    for log, result in ((mine, unwritten), (mine, finished), (theirs, elsewhere)):
        log.started(result.id, claimed[result.id].attempt)
    mine.settled([finished.id])
    theirs.settled([elsewhere.id])

    # When their leases expire
    later = time.time() + WORKER_DEFAULTS["lease_seconds"] + 1
    recovery = recover_orphans(storage.db, crash_limit=1, me=me, now=later)

    # Then only the attempt it still runs is charged; the others go back as handed back
    assert recovery.buried == [unwritten.id]
    assert [e.message for e in queries.job_errors(storage.db, unwritten.id)] == [
        "lease of attempt 1 expired: its outcome could not be written"]
    assert sorted(recovery.requeued) == sorted([finished.id, elsewhere.id])
    for result in (finished, elsewhere):
        row = queries.get_job(storage.db, result.id)
        assert (row.state, row.attempt, row.crashes) == ("available", 0, 0)
        assert row.reason == "its worker was not running it when its lease expired; requeued"
        assert queries.job_errors(storage.db, result.id) == []
    assert read_started(storage.db.path, me) == {(unwritten.id, 1)}  # a live worker's stays
    mine.close()
    theirs.close()


def test_a_stuck_attempt_whose_crash_could_not_be_written_is_charged_once_its_lease_lapses(
        huey, monkeypatch):
    # Given this worker writing off an attempt stuck past its timeout, and the write failing
    storage = huey.jobs
    me = f"{socket.gethostname()}:{os.getpid()}:1"
    storage.owner = me
    storage.running = storage.store.attempt_log(me)
    stuck = jobs.add(1, 1)
    [claimed] = storage.claim_due(1)
    storage.attempt_started(claimed.id, claimed.attempt)

    def fails(*args, **kwargs):
        raise DatabaseLocked("jobs.db: database is locked")

    monkeypatch.setattr(storage.store, "charge_stuck", fails)
    assert huey.charge_stuck(Attempt(claimed, started_at=time.time()), "stuck") is None
    monkeypatch.undo()

    # When its lease lapses, Then the recovery charges the crash the write-off could not
    later = time.time() + WORKER_DEFAULTS["lease_seconds"] + 1
    assert recover_orphans(storage.db, crash_limit=1, me=me, now=later).buried == [stuck.id]
    assert [e.kind for e in queries.job_errors(storage.db, stuck.id)] == ["crash"]
    storage.running.close()


def test_outcomes_kept_by_a_dead_worker_are_written_by_its_recovery_instead_of_a_crash(huey):
    # Given a dead worker that started three attempts and kept their outcomes, unwritten:
    # a completion with its result, a failure with a retry left and a failure for good
    storage = huey.jobs
    done, again, over = jobs.add(1, 1), jobs.add(2, 2), jobs.add(3, 3)
    storage.owner = DEAD
    claimed = {c.id: c for c in storage.claim_due(3)}
    running = RunningFile(running_path(storage.db.path, DEAD), keeps_outcomes=True)
    for job_id, c in claimed.items():
        running.started(job_id, c.attempt)
    now = time.time()
    failure = FailureInfo("error", "ValueError", "no", "Traceback ...", now - 1)
    assert running.keep_outcomes(
        [Ack(done.id, 1, now - 1, now, ((f"r:{done.id}", b"two"),))],
        [Failed(again.id, 1, failure, "retrying", DEAD, now, "retry soon", now + 60, b"new"),
         Failed(over.id, 1, failure, "dead", DEAD, now, "ValueError: no")])
    running.close(remove=False)
    # and a sweep of stale files meanwhile, which must leave them
    forget_stale_files(storage.db, socket.gethostname(), {DEAD})

    # When the next worker recovers its jobs
    recovery = recover_orphans(storage.db, crash_limit=3)

    # Then each ends as its outcome says, uncharged, and the files are gone
    rows = {r: queries.get_job(storage.db, r.id) for r in (done, again, over)}
    assert [(row.state, row.attempt, row.crashes) for row in rows.values()] == [
        ("completed", 1, 0), ("retrying", 1, 0), ("dead", 1, 0)]
    assert rows[again].run_at == pytest.approx(now + 60)
    assert storage.db.query("SELECT value FROM runner_kv WHERE key=?",
                            (f"r:{done.id}",)) == [(b"two",)]
    assert recovery.requeued == [] and recovery.buried == [over.id]
    assert not list(running_dir(storage.db.path).iterdir())


def test_a_running_file_of_a_backend_that_does_not_read_kept_outcomes_keeps_none(tmp_path):
    running = RunningFile(running_path(tmp_path / "jobs.db", DEAD))
    assert not running.keep_outcomes([Ack("a", 1, None, time.time())])
    running.close()
    assert read_kept_outcomes(tmp_path / "jobs.db", DEAD) == []
