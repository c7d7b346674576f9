"""``migrate-to``, the same on PostgreSQL and Redis: what a user asked of a job on the file
(revoke it, revoke its task, cancel it while it ran) still holds once it is copied, so
the target never runs what the file would not have."""

from __future__ import annotations

import datetime
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import configure, emit, get_huey
from runner.cli import main
from runner.errors import EventNotFound
from runner.service_sections import RetentionSection
from runner.settings_loader import load_settings
from runner.store.factory import open_store
from runner.store.job_rows import FailureInfo
from runner.store.rows import JobFilter
from runner.store.sqlite.running_file import RunningFile, running_dir, running_path
from runner.store.states import JobState
from runner.testing import drain
from tests import jobs
from tests.conftest import write_settings
from tests.postgres_support import fresh_schema, postgres_url
from tests.redis_support import REDIS_URL, new_prefix, redis_or_skip, redis_settings

DAY = 86400.0


@pytest.fixture(params=["postgres", "redis"])
def target(request: pytest.FixtureRequest, tmp_path: Path,
           settings_file: Path) -> Iterator[tuple[str, Path]]:
    """(the URL to copy to, settings of workers on it); the file's settings come back after."""
    if request.param == "postgres":
        postgres_url()
        with fresh_schema() as url:
            path = write_settings(tmp_path, name="target.toml",
                                  worker={"queue_type": "postgres"})
            path.write_text(path.read_text().replace('database = "jobs.db"',
                                                     f'database = "{url}"'))
            yield url, path
            _back_to_the_file(settings_file)
        return
    redis_or_skip()
    prefix = new_prefix()
    path = redis_settings(tmp_path, prefix, name="target.toml")
    yield f"{REDIS_URL}?prefix={prefix}", path
    _back_to_the_file(settings_file)
    store = open_store(load_settings(path, environ={}))
    store.delete_all()  # type: ignore[attr-defined]
    store.close()


def _back_to_the_file(settings_file: Path) -> None:
    huey = get_huey()
    if huey.jobs is not None:
        huey.jobs.store.close()
    configure(load_settings(settings_file, environ={}))


def _migrate(settings_file: Path, url: str) -> None:
    assert main(["--settings", str(settings_file), "migrate-to", url]) == 0


def _on(settings: Path):  # noqa: ANN202 - the runner's huey
    """The runner pointed at the target, as its workers will be."""
    huey = get_huey()
    if huey.jobs is not None:
        huey.jobs.store.close()
    configure(load_settings(settings, environ={}))
    return get_huey()


def test_revoked_jobs_and_tasks_stay_revoked_and_locks_stay_behind(huey, settings_file,
                                                                   target, record_file):
    # Given a file where one job was revoked, a task was revoked as a whole, one job
    # was revoked until a time already past, and a lock was held when its workers stopped
    url, settings = target
    revoked = jobs.record_run("revoked")
    revoked.revoke()
    jobs.noop.revoke()
    blocked = jobs.noop()
    lapsed = jobs.record_run("lapsed")
    huey.revoke_by_id(lapsed.id, revoke_until=datetime.datetime.now() - datetime.timedelta(
        seconds=5))
    kept = jobs.record_run("kept")
    huey.lock_task("nightly-report").acquire()
    # When the file is copied and a worker of the target runs what is due
    _migrate(settings_file, url)
    target_huey = _on(settings)
    assert drain(target_huey) == 4
    # Then the revoked job and the revoked task's job end cancelled without running,
    # and the others ran
    store = target_huey.jobs.store
    states = {r.id: store.get_job(r.id).state for r in (revoked, blocked, lapsed, kept)}
    assert states == {revoked.id: JobState.CANCELLED, blocked.id: JobState.CANCELLED,
                      lapsed.id: JobState.COMPLETED, kept.id: JobState.COMPLETED}
    assert sorted(line.split()[0] for line in record_file.read_text().splitlines()) == [
        "kept", "lapsed"]
    # and the task stays revoked for later calls, until restored there
    assert target_huey.is_revoked(jobs.noop)
    # and the lock, whose holder stopped with the file's workers, is free on the target
    assert not target_huey.is_locked("nightly-report")
    target_huey.lock_task("nightly-report").acquire()


def test_a_revocation_made_after_a_copy_arrives_with_the_next(huey, settings_file, target):
    # Given a file copied once, then a job of it revoked there
    url, settings = target
    late = jobs.add(1, 2)
    _migrate(settings_file, url)
    late.revoke()
    # When it is copied again, Then the target holds the revocation too
    _migrate(settings_file, url)
    target_huey = _on(settings)
    assert target_huey.is_revoked(late.id)
    assert drain(target_huey) == 1
    assert target_huey.jobs.store.get_job(late.id).state == JobState.CANCELLED


def test_a_revocation_restored_on_the_target_is_not_brought_back_by_a_copy(
        huey, settings_file, target):
    # Given a revoked job copied over, and restored on the target by hand
    url, settings = target
    held = jobs.add(1, 2)
    held.revoke()
    _migrate(settings_file, url)
    assert _on(settings).restore_by_id(held.id)
    # When the file is copied again, Then the job stays restored and runs there
    _migrate(settings_file, url)
    target_huey = _on(settings)
    assert not target_huey.is_revoked(held.id)
    assert drain(target_huey) == 1
    assert target_huey.jobs.store.get_job(held.id).state == JobState.COMPLETED


def test_a_running_job_whose_cancel_was_asked_arrives_cancelled(huey, settings_file, target):
    # Given two jobs a worker of the file was running when it stopped, one of which
    # someone asked to cancel (the worker never got to stop it)
    url, settings = target
    file = huey.jobs.store
    asked, other = jobs.add(1, 1), jobs.add(2, 2)
    now = time.time()
    claimed = file.claim(now=now, owner="gone-host:1:1", lease_seconds=30, want=2).claimed
    assert {c.id for c in claimed} == {asked.id, other.id}
    assert file.request_cancel(asked.id, by="alice", now=now) == JobState.EXECUTING
    cancelled_before = _cancelled(file, now)
    # When the file is copied, twice
    _migrate(settings_file, url)
    _migrate(settings_file, url)
    # Then the job asked to be cancelled arrives cancelled, saying by whom, and counted
    # once; the other waits to run again
    target_huey = _on(settings)
    store = target_huey.jobs.store
    job = store.get_job(asked.id)
    assert job.state == JobState.CANCELLED and "cancelled by alice" in (job.reason or "")
    assert job.lease_owner is None and job.finished_at is not None
    assert _cancelled(store, now) == cancelled_before + 1
    assert drain(target_huey) == 1
    assert store.get_job(other.id).state == JobState.COMPLETED
    assert store.get_job(asked.id).state == JobState.CANCELLED


def _cancelled(store, now: float) -> int:  # noqa: ANN001 - a store
    return sum(t.cancelled for t in store.read_snapshot(now=now).totals)


def test_what_the_target_ran_and_pruned_is_not_copied_back(huey, settings_file, target):
    # Given a job and an event copied over, run there, then pruned by retention
    url, settings = target
    copied = jobs.add(1, 2)
    event = emit("nobody.listens", {"n": 1})
    _migrate(settings_file, url)
    target_huey = _on(settings)
    assert drain(target_huey) == 2  # the job, and the event's dispatch
    store = target_huey.jobs.store
    later = time.time() + 3 * DAY
    store.prune_retention(RetentionSection(completed_days=1, events_days=1, vacuum=False),
                          now=later)
    assert store.count_jobs() == 0 and not _held(store, event)
    # When the file is copied again, twice, Then neither comes back (to run twice)
    _migrate(settings_file, url)
    _migrate(settings_file, url)
    assert store.count_jobs() == 0 and not _held(store, event)
    assert copied.id not in {r.id for r in store.list_jobs(JobFilter(), limit=10)}


def _held(store, event_id: str) -> bool:  # noqa: ANN001 - a store
    try:
        store.get_event(event_id)
    except EventNotFound:
        return False
    return True


def test_a_second_copy_lists_every_kind_logs_included(huey, settings_file, target, capsys):
    # Given a file with log lines, copied by the first copy
    import logging

    huey.jobs.store.write_logs([(time.time(), logging.INFO, "tests.jobs", f"line {n}", None,
                                 None, "w:1:1") for n in range(3)])
    url, _ = target
    _migrate(settings_file, url)
    first = capsys.readouterr().out
    assert "  logs: " in first and "  logs: 0 read" not in first, first
    # When it is copied again, Then the summary still has a logs line (nothing new)
    _migrate(settings_file, url)
    again = capsys.readouterr().out
    assert "  logs: 0 read, 0 new, 0 already there" in again, again
    kinds = [line.split(":")[0].strip() for line in first.splitlines()[1:-1]]
    assert [line.split(":")[0].strip() for line in again.splitlines()[1:-1]] == kinds



#: A worker of this host whose process is gone (pid far beyond any live one).
DEAD = f"{socket.gethostname()}:4194999:1"


def _orphans_of_a_dead_worker(store) -> dict[str, str]:  # noqa: ANN001 - the file's store
    """A file whose worker ``DEAD`` was killed holding four jobs: one it had started, one
    it had claimed ahead and not started, one on its second attempt after a failure, and
    one that had been running during two worker deaths already; name -> job id."""
    doomed = jobs.add(3, 3)
    t = time.time()
    for at in (t, t + 31):
        store.claim(now=at, owner="gone-host:1:1", lease_seconds=30, want=1)
        assert store.recover_orphans(crash_limit=3, now=at + 31).requeued == [doomed.id]
    again = jobs.always_fails("again")
    # before ``doomed`` is due again: only ``again`` is claimed
    assert [c.id for c in store.claim(now=t + 61, owner=DEAD, lease_seconds=30,
                                      want=1).claimed] == [again.id]
    store.retry(again.id, 1, FailureInfo("error", "RuntimeError", "boom", "Traceback ...",
                                         started_at=t + 61),
                worker=DEAD, now=t + 61, run_at=t + 61, reason="failed; retrying")
    ran, waited = jobs.add(1, 1), jobs.add(2, 2)
    claimed: dict[str, int] = {}
    for _ in range(4):  # a suspect (``doomed``) is claimed alone
        claimed |= {c.id: c.attempt for c in store.claim(now=t + 62, owner=DEAD,
                                                         lease_seconds=30, want=4).claimed}
    ids = {"ran": ran.id, "waited": waited.id, "again": again.id, "doomed": doomed.id}
    assert set(claimed) == set(ids.values())
    running = RunningFile(running_path(store.db.path, DEAD))
    for name in ("ran", "again", "doomed"):
        running.started(ids[name], claimed[ids[name]])
    running.close(remove=False)  # as a kill -9 leaves it
    return ids


def _recovered_copy(store, tmp_path: Path):  # noqa: ANN001, ANN202 - SQLite stores
    """A copy of the file (with its workers' running files), recovered there by the
    file's own recovery, as the next worker on the file would."""
    copy = tmp_path / "recovered" / store.db.path.name
    copy.parent.mkdir()
    with sqlite3.connect(store.db.path) as source, sqlite3.connect(copy) as into:
        source.backup(into)
    shutil.copytree(running_dir(store.db.path), running_dir(copy))
    recovered = open_store(copy)
    recovered.recover_orphans(crash_limit=3)
    return recovered


def _history(store, job_id: str) -> list[tuple]:  # noqa: ANN001 - a store
    return [(e.attempt, e.kind, e.error_type, e.message, e.worker, e.started_at)
            for e in store.job_errors(job_id)]


def _counted(store) -> dict[str, int]:  # noqa: ANN001 - a store
    totals = store.read_snapshot(now=time.time()).totals
    return {what: sum(getattr(t, what) for t in totals)
            for what in ("failed", "retried", "dead", "cancelled")}


def test_jobs_running_when_the_file_worker_died_arrive_as_the_file_recovery_leaves_them(
        huey, settings_file, target, tmp_path):
    # Given a file whose worker was killed while it ran jobs, some claimed ahead
    url, settings = target
    ids = _orphans_of_a_dead_worker(huey.jobs.store)
    expected = _recovered_copy(huey.jobs.store, tmp_path)
    # When the file is copied, twice
    _migrate(settings_file, url)
    _migrate(settings_file, url)
    # Then each job arrives as the file's own recovery leaves it: the started attempts
    # charged a crash (recorded in their history) and not the retries, the one claimed
    # ahead uncharged, the one at its crash limit dead; the counters went on the same
    store = _on(settings).jobs.store
    for name, job_id in ids.items():
        want, got = expected.get_job(job_id), store.get_job(job_id)
        assert (got.state, got.attempt, got.crashes, got.reason, got.started_at) == (
            want.state, want.attempt, want.crashes, want.reason, want.started_at), name
        assert (got.error_type, got.error_message) == (want.error_type, want.error_message)
        assert got.lease_owner is None, name
        assert _history(store, job_id) == _history(expected, job_id), name
    assert _counted(store) == _counted(expected)
    crashed = store.get_job(ids["ran"])
    assert (crashed.state, crashed.attempt, crashed.crashes) == (JobState.AVAILABLE, 1, 1)
    assert store.get_job(ids["waited"]).attempt == 0
    assert store.get_job(ids["doomed"]).state == JobState.DEAD
    expected.close()


def test_a_job_crashed_on_the_file_runs_again_on_the_target_within_its_retries(
        huey, settings_file, target):
    # Given a job with no retries that was running when the file's worker was killed
    url, settings = target
    store = huey.jobs.store
    ran = jobs.add(1, 1)
    claimed = store.claim(now=time.time(), owner=DEAD, lease_seconds=30, want=1).claimed
    running = RunningFile(running_path(store.db.path, DEAD))
    running.started(ran.id, claimed[0].attempt)
    running.close(remove=False)
    # When the file is copied and a worker of the target runs it
    _migrate(settings_file, url)
    target_huey = _on(settings)
    assert drain(target_huey) == 1
    # Then its second attempt is the one its limit allows, plus the crash
    job = target_huey.jobs.store.get_job(ran.id)
    assert (job.state, job.attempt, job.max_attempts, job.crashes) == (
        JobState.COMPLETED, 2, 1, 1)
