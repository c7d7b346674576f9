"""A PostgreSQL server for the tests: find it, and give each test a schema of its own.

``RUNNER_TEST_POSTGRES`` names the server and database (default: the ``test``
database on 127.0.0.1:5432). Without a server the tests that need one are
skipped with the reason, except under ``CI=true``, where they fail: CI must
never pass by skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

BASE_URL = os.environ.get("RUNNER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

_reachable: bool | None = None
_why = ""


def postgres_url() -> str:
    """The server's URL; skips the test (fails it under CI=true) when it is not reachable."""
    global _reachable, _why
    if _reachable is None:
        try:
            with psycopg.connect(BASE_URL, connect_timeout=3):
                _reachable = True
        except psycopg.Error as exc:
            _reachable, _why = False, str(exc).strip().splitlines()[0]
    if not _reachable:
        message = f"no PostgreSQL server at {BASE_URL} ({_why})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(message)
    return BASE_URL


def schema_url(base: str, schema: str) -> str:
    """``base`` with its ``search_path`` set to ``schema`` (libpq's ``options``)."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema(prefix: str = "runner_test") -> Iterator[str]:
    """A URL whose connections work in a new, uniquely named schema, dropped afterwards."""
    base = postgres_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
