"""A Redis prefix nothing was ever written under (a mistyped prefix, no worker run yet)
is no jobs database: the CLI and the dashboard say so, as they do for a missing SQLite
file or a PostgreSQL database without the jobs tables, and write nothing there. A
writer (worker, producer) still starts a fresh prefix."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from runner.cli import main as cli
from runner.errors import EX_CANTCREAT, EX_DATAERR
from runner.registry import get_huey
from runner.store.factory import open_store
from runner.store.redis import RedisStore
from tests.conformance.helpers import job
from tests.redis_support import REDIS_URL, new_prefix, redis_or_skip, redis_settings
from tui.__main__ import main as dashboard

#: The shared server's URL with a user and password (its default user takes any password):
#: the password never shows in a message.
SECRET = "s3cret-pw"
WITH_PASSWORD = urlunsplit(urlsplit(REDIS_URL)._replace(
    netloc=f"default:{SECRET}@{urlsplit(REDIS_URL).netloc}"))


def keys(prefix: str) -> list[bytes]:
    return list(redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{prefix}:*"))


@pytest.fixture
def prefix(monkeypatch) -> Iterator[str]:
    """A prefix nothing was written under; whatever a test wrote there is deleted after."""
    redis_or_skip()
    monkeypatch.setenv("RUNNER_ENV_FILE", "")
    for name in ("RUNNER_SETTINGS", "RUNNER_DATABASE", "WORKER_QUEUE_TYPE"):
        monkeypatch.delenv(name, raising=False)
    name = new_prefix()
    yield name
    huey = get_huey()
    if huey.jobs is not None:
        huey.jobs.store.close()
    RedisStore(REDIS_URL, prefix=name).delete_all()


def says_no_jobs_database_here(text: str, prefix: str) -> None:
    assert "no jobs database" in text, text
    assert f"prefix {prefix!r}" in text or f"prefix={prefix}" in text, text
    assert SECRET not in text and urlsplit(REDIS_URL).hostname in text, text
    assert "mistyped prefix" in text and "no worker has run" in text, text


@pytest.mark.parametrize("command", [["jobs"], ["stats"], ["queues"], ["workers"],
                                     ["show", "x"], ["logs"], ["events"], ["schedules"]])
def test_read_only_commands_on_an_empty_prefix_say_there_is_no_jobs_database(
        command, tmp_path, prefix, capsys):
    settings = redis_settings(tmp_path, prefix, url=WITH_PASSWORD)
    code = cli(["--settings", str(settings), *command])
    out = capsys.readouterr()
    assert code == EX_CANTCREAT, out
    says_no_jobs_database_here(out.err, prefix)
    assert len(out.err.strip().splitlines()) == 1, out.err
    assert keys(prefix) == []  # and nothing written there


def test_health_on_an_empty_prefix_is_unhealthy_naming_the_prefix(tmp_path, prefix, capsys):
    settings = redis_settings(tmp_path, prefix, url=WITH_PASSWORD)
    code = cli(["--settings", str(settings), "health"])
    out = capsys.readouterr()
    assert code == 1 and out.out.startswith("unhealthy: database: "), out
    says_no_jobs_database_here(out.out, prefix)
    assert keys(prefix) == []


def test_a_prefix_given_in_the_database_url_is_named(tmp_path, prefix, capsys):
    url = f"{WITH_PASSWORD}?prefix={prefix}"
    code = cli(["--database", url, "jobs"])
    out = capsys.readouterr()
    assert code == EX_CANTCREAT, out
    says_no_jobs_database_here(out.err, prefix)


def test_the_dashboard_on_an_empty_prefix_says_there_is_no_jobs_database(prefix, capsys):
    code = dashboard(["--redis", f"{WITH_PASSWORD}?prefix={prefix}"])
    err = capsys.readouterr().err
    assert code == EX_DATAERR, err  # as for a PostgreSQL database without the jobs tables
    says_no_jobs_database_here(err, prefix)
    assert len(err.strip().splitlines()) == 1, err
    assert keys(prefix) == []


def test_a_producer_starts_a_fresh_prefix_and_reads_then_find_its_jobs(tmp_path, prefix,
                                                                       capsys):
    settings = redis_settings(tmp_path, prefix)
    # Given a script enqueueing on a prefix nothing was written under
    assert cli(["--settings", str(settings), "enqueue", "add", "--args", "[1, 2]"]) == 0
    job_id = capsys.readouterr().out.strip()
    # Then the reads find a jobs database there, with the job
    assert cli(["--settings", str(settings), "jobs"]) == 0
    assert job_id[-12:] in capsys.readouterr().out


def test_a_store_opened_to_write_marks_its_prefix_as_a_jobs_database(prefix):
    url = f"{REDIS_URL}?prefix={prefix}"
    reader = open_store(url, readonly=True)
    try:
        # A reader finds nothing there, and writes nothing
        assert not reader.has_table("runner_job")
        assert keys(prefix) == []
        # A worker or producer opening it to write makes it a jobs database at once
        writer = open_store(url)
        writer.close()
        assert keys(prefix) != []
        assert open_store(url, readonly=True).has_table("runner_job")
    finally:
        reader.close()


def test_a_prefix_an_earlier_release_wrote_is_a_jobs_database(prefix):
    # Given jobs written under a prefix by a release that left no mark of it
    old = RedisStore(REDIS_URL, prefix=prefix)
    old.enqueue([job(time.time())], now=time.time())
    old.r.delete(old.k("meta"))
    # Then a reader finds a jobs database there
    reader = open_store(f"{REDIS_URL}?prefix={prefix}", readonly=True)
    try:
        assert reader.has_table("runner_job")
        reader.verify()
    finally:
        reader.close()
        old.close()
