"""A Redis URL whose database number or port cannot be meant: a settings error naming it,
the password never shown, before any connection."""

from __future__ import annotations

import pytest

from runner.errors import EX_CONFIG, ConfigError
from runner.store.factory import open_store

MALFORMED = [
    ("redis://:redis-url-password@127.0.0.1:6379/abc", "database 'abc' is not a number"),
    ("redis://:redis-url-password@127.0.0.1:6379/-1", "database '-1' is not a number"),
    ("redis://:redis-url-password@127.0.0.1:6379/0?db=x", "database 'x' is not a number"),
    ("redis://:redis-url-password@127.0.0.1:six/0", "port 'six' is not a port number"),
]


@pytest.mark.parametrize(("url", "problem"), MALFORMED)
def test_a_database_that_is_not_a_number_is_a_settings_error_naming_it(url, problem):
    with pytest.raises(ConfigError) as raised:
        open_store(url)
    message = str(raised.value)
    assert raised.value.exit_code == EX_CONFIG
    assert problem in message, message
    assert "redis-url-password" not in message and ":***@" in message
