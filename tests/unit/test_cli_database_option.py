"""``--database`` names the data directly, a server's URL as well as a file, as the
dashboard's ``--db`` does: the URL's scheme chooses the backend."""

from __future__ import annotations

import time

import pytest

from runner.cli import main as cli
from runner.registry import get_huey
from runner.store.postgres import PgDatabase, PostgresStore
from runner.store.postgres.schema import prepare
from tests.conformance.helpers import job
from tests.conftest import write_settings
from tests.postgres_support import fresh_schema
from tests.redis_support import REDIS_URL, fresh_store


@pytest.fixture(autouse=True)
def _no_service_environment(monkeypatch):
    monkeypatch.setenv("RUNNER_ENV_FILE", "")
    monkeypatch.delenv("RUNNER_SETTINGS", raising=False)
    monkeypatch.delenv("RUNNER_DATABASE", raising=False)
    monkeypatch.delenv("WORKER_QUEUE_TYPE", raising=False)
    yield
    huey = get_huey()
    if huey.jobs is not None:
        huey.jobs.store.close()


def test_a_postgresql_url_is_read_with_the_settings_of_a_sqlite_file(tmp_path, capsys):
    # Given the settings of the file the user moved from, and the jobs now on PostgreSQL
    settings = write_settings(tmp_path)
    with fresh_schema() as url:
        db = PgDatabase(url)
        try:
            prepare(db)
            waiting = job(time.time())
            PostgresStore(db).enqueue([waiting], now=time.time())
            # When the CLI is pointed at the server's URL
            code = cli(["--settings", str(settings), "--database", url, "jobs"])
        finally:
            db.close()
    # Then it lists the server's jobs
    out = capsys.readouterr()
    assert code == 0, out.err
    assert waiting.id[-12:] in out.out


def test_a_redis_url_is_read_with_the_settings_of_a_sqlite_file(tmp_path, capsys):
    settings = write_settings(tmp_path)
    with fresh_store() as store:
        waiting = job(time.time())
        store.enqueue([waiting], now=time.time())
        code = cli(["--settings", str(settings), "--database",
                    f"{REDIS_URL}?prefix={store.prefix}", "jobs"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert waiting.id[-12:] in out.out
