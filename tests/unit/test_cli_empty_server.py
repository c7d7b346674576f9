"""Reading a PostgreSQL database that holds no jobs tables creates none: the CLI says
there is no jobs database there, as it does for a missing SQLite file."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from runner.cli import Context, build_parser
from runner.cli import main as cli
from runner.registry import get_huey
from tests.conftest import write_settings
from tests.postgres_support import fresh_schema


@pytest.fixture
def empty_url(monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("RUNNER_ENV_FILE", "")
    monkeypatch.delenv("RUNNER_SETTINGS", raising=False)
    monkeypatch.delenv("RUNNER_DATABASE", raising=False)
    with fresh_schema() as url:
        yield url
        huey = get_huey()
        if huey.jobs is not None:
            huey.jobs.store.close()


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [t for (t,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]


@pytest.mark.parametrize("command", [["jobs"], ["queues"], ["workers"], ["health"],
                                     ["schedules", "show", "nightly"], ["show", "x"],
                                     ["stats"], ["metrics"], ["logs"], ["check"],
                                     ["schedules"], ["events"],
                                     # a pause on a mistyped database would pause nothing
                                     ["queues", "pause", "mail"], ["tasks", "pause", "add"],
                                     ["queues", "resume", "mail"]])
def test_read_only_commands_never_create_the_tables(command, tmp_path, empty_url, capsys):
    settings = write_settings(tmp_path, worker={"queue_type": "postgres"})
    settings.write_text(settings.read_text().replace('database = "jobs.db"',
                                                     f'database = "{empty_url}"'))
    code = cli(["--settings", str(settings), *command])
    assert tables(empty_url) == []
    out = capsys.readouterr()
    if command == ["check"]:
        assert code == 0 and "not created yet" in out.out, out
    elif command == ["health"]:
        assert code == 1 and "holds no jobs tables" in out.out, out
    else:
        assert code == 73, out
        assert "no jobs database here" in out.err and "--settings" in out.err, out
        assert "postgresql://" in out.err, out


def wait_for_no_connections(url: str, name: str, deadline: float = 5.0) -> int:
    """The server's connections named ``name`` once none is left, or at the deadline (the
    server process of a closed connection ends a moment after the client closed it)."""
    end = time.monotonic() + deadline
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            count = conn.execute("SELECT count(*) FROM pg_stat_activity "
                                 "WHERE application_name = %s", (name,)).fetchone()[0]
            if not count or time.monotonic() >= end:
                return count


@pytest.mark.parametrize("prepared", [False, True])
def test_the_probe_before_a_read_only_command_closes_its_connections(prepared, tmp_path,
                                                                   empty_url):
    # Given a database, with the jobs tables or without, reached under a name of its own
    name = f"probe-{uuid.uuid4().hex[:12]}"
    url = f"{empty_url}&application_name={name}"
    if prepared:
        from runner.store.postgres import PgDatabase
        from runner.store.postgres.schema import prepare
        db = PgDatabase(empty_url, pool_size=2)
        prepare(db)
        db.close()
    settings = write_settings(tmp_path, worker={"queue_type": "postgres"})
    settings.write_text(settings.read_text().replace('database = "jobs.db"', f'database = "{url}"'))
    ctx = Context(build_parser().parse_args(["--settings", str(settings), "jobs"]))
    # When the CLI asks whether it holds a jobs database
    assert ctx.database_exists() is prepared
    # Then the store it opened to ask is closed: no connection of it stays on the server
    assert wait_for_no_connections(empty_url, name) == 0
