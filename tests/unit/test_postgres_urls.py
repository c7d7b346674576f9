"""A PostgreSQL URL that cannot work, or a server that refuses: a clear error, no traceback,
the password never shown, nothing written."""

from __future__ import annotations

import psycopg
import pytest

from runner.errors import EX_CANTCREAT, EX_CONFIG, ConfigError, DatabaseUnavailable
from runner.store.factory import open_store
from tests.postgres_support import fresh_schema, postgres_url, role_without_create

MALFORMED = [
    "postgresql://jobs:pg-url-password@[::1/jobs",             # an IPv6 host left open
    "postgresql://jobs:pg-url-password@127.0.0.1:five/jobs",   # a port that is not a number
    "postgresql://jobs:pg-url-password@127.0.0.1/jobs?colour=1",  # an unknown parameter
]


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_url_is_a_settings_error_naming_it_without_its_password(url):
    with pytest.raises(ConfigError) as raised:
        open_store(url)
    message = str(raised.value)
    assert raised.value.exit_code == EX_CONFIG
    assert "pg-url-password" not in message
    assert "jobs:***@" in message
    assert "RUNNER_DATABASE" in message


def _tables(url: str) -> list[str]:
    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(postgres_url()) as conn:
        return [name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]


def test_a_role_that_may_not_create_tables_is_told_so_and_nothing_is_written():
    with fresh_schema() as url, role_without_create(url) as limited:
        with pytest.raises(DatabaseUnavailable) as raised:
            open_store(limited)
        message = str(raised.value)
        assert raised.value.exit_code == EX_CANTCREAT
        assert "permission denied for schema" in message and "CREATE" in message, message
        assert "role-password" not in message
        assert _tables(url) == []


def test_a_search_path_naming_no_schema_is_told_so_and_nothing_is_written():
    with fresh_schema() as url:
        missing = url.replace("%3Drunner_test_", "%3Drunner_missing_")
        with pytest.raises(DatabaseUnavailable) as raised:
            open_store(missing)
        message = str(raised.value)
        assert raised.value.exit_code == EX_CANTCREAT
        assert "runner_missing_" in message and "CREATE SCHEMA" in message, message
        assert _tables(url) == []


@pytest.mark.parametrize(("change", "said"), [
    (lambda base: f"{base.rsplit('/', 1)[0]}/runner_no_such_database",
     'database "runner_no_such_database" does not exist'),
    (lambda base: base.replace("://postgres@", "://runner_no_such_role@"),
     'role "runner_no_such_role" does not exist'),
])
def test_a_database_or_role_that_does_not_exist_is_named_at_once(change, said):
    # The server's answer is final: said as it is, not waited on as an outage would be
    missing = change(postgres_url())
    with pytest.raises(DatabaseUnavailable) as raised:
        open_store(missing)
    message = str(raised.value)
    assert raised.value.exit_code == EX_CANTCREAT
    assert f"PostgreSQL refused the connection: {said}" in message, message
