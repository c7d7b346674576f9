"""``migrate-to``, the same on PostgreSQL and Redis: what a user asked of a job on the file
(revoke it, revoke its task, cancel it while it ran) still holds once it is copied, so
the target never runs what the file would not have."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import configure, emit, get_huey
from runner.cli import main
from runner.config import load_settings
from runner.errors import EventNotFound
from runner.sections import RetentionSection
from runner.store.factory import open_store
from runner.store.rows import JobFilter
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
