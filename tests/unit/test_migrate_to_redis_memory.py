"""What Redis keeps of a ``migrate-to`` copy stays bounded: the ids of the jobs and events
copied (``copied:jobs``, ``copied:events``) go with the jobs and events retention prunes,
and a copy run again still brings none of them back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import configure, emit, get_huey
from runner.cli import main
from runner.runner_huey import RunnerHuey
from runner.service_sections import RetentionSection
from runner.settings_loader import load_settings
from runner.store.redis import RedisStore
from runner.testing import drain
from tests import jobs
from tests.redis_support import REDIS_URL, new_prefix, redis_or_skip, redis_settings

DAY = 86400.0
PRUNE = RetentionSection(completed_days=1, events_days=1, vacuum=False)


@pytest.fixture
def target(tmp_path: Path, settings_file: Path) -> Iterator[tuple[str, RedisStore]]:
    redis_or_skip()
    prefix = new_prefix()
    store = RedisStore(REDIS_URL, prefix=prefix)
    store.settings_path = redis_settings(tmp_path, prefix, name="target.toml")  # type: ignore[attr-defined]
    yield f"{REDIS_URL}?prefix={prefix}", store
    _point(settings_file)
    store.delete_all()
    store.close()


def _point(settings: Path) -> RunnerHuey:
    huey = get_huey()
    if huey.jobs is not None:
        huey.jobs.store.close()
    configure(load_settings(settings, environ={}))
    return get_huey()


def _migrate(settings_file: Path, url: str) -> None:
    assert main(["--settings", str(settings_file), "migrate-to", url]) == 0


def _copied(redis: RedisStore) -> tuple[set[str], set[str]]:
    return tuple({m.decode() for m in redis.r.smembers(redis.k(f"copied:{what}"))}
                 for what in ("jobs", "events"))  # type: ignore[return-value]


def _run_and_prune(redis: RedisStore, settings_file: Path) -> None:
    """Run what is due on Redis, then prune as retention will three days on."""
    drain(_point(redis.settings_path))  # type: ignore[attr-defined]
    _point(settings_file)
    redis.prune_retention(PRUNE, now=time.time() + 3 * DAY)


def test_ids_go_with_the_jobs_and_events_retention_prunes(huey, settings_file, target,
                                                          capsys):
    # Given a file whose jobs and event were copied, one job due only next week
    url, redis = target
    ran, later = jobs.add(1, 2), jobs.add.schedule((2, 3), delay=7 * DAY)
    event = emit("nobody.listens", {"n": 1})
    _migrate(settings_file, url)
    copied_jobs, copied_events = _copied(redis)
    assert {ran.id, later.id} < copied_jobs and len(copied_jobs) == 3  # and the dispatch
    assert copied_events == {event}
    # When Redis runs what is due and retention prunes it
    _run_and_prune(redis, settings_file)
    # Then only the job Redis still holds is remembered
    assert _copied(redis) == ({later.id}, set())
    # and a copy run again, twice, brings nothing back
    capsys.readouterr()
    _migrate(settings_file, url)
    _migrate(settings_file, url)
    out = capsys.readouterr().out
    assert " new" in out and all(" 0 new" in line for line in out.splitlines()
                                 if line.startswith(("  jobs:", "  events:")))
    assert [r.id for r in redis.list_jobs(limit=10)] == [later.id]
    assert _copied(redis) == ({later.id}, set())


def test_a_copy_of_an_earlier_release_keeps_its_ids(huey, settings_file, target):
    # Given a copy that did not record how far it read the file (an earlier release)
    url, redis = target
    copied = jobs.add(1, 2)
    _migrate(settings_file, url)
    redis.r.hdel(redis.k("copied"), "jobs_read", "events_read")
    # When its job is run and pruned, Then its id is kept: nothing says it was read
    _run_and_prune(redis, settings_file)
    assert _copied(redis)[0] == {copied.id}
    _migrate(settings_file, url)
    assert redis.count_jobs() == 0
