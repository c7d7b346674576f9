"""A PostgreSQL URL that cannot work, or a server that refuses: a clear error, no traceback,
the password never shown, nothing written."""

from __future__ import annotations

import pytest

from runner.errors import EX_CONFIG, ConfigError
from runner.store.factory import open_store

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
