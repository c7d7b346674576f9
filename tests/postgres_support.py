"""A PostgreSQL server for the tests: find it, and give each test a schema of its own.

Creating a schema's tables, indexes and triggers takes a few hundred milliseconds;
the storage-contract tests, which only go through the store, reuse one prepared
schema per test process instead (``reused_schema``), emptied to its just-prepared
state between tests. Tests of the schema itself, and tests with worker processes
that may outlive a test's connections, keep a fresh schema each (``fresh_schema``).

``RUNNER_TEST_POSTGRES`` names the server and database (default: the ``test``
database on 127.0.0.1:5432). Without a server the tests that need one are
skipped with the reason, except under ``CI=true``, where they fail: CI must
never pass by skipping them.
"""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Callable, Iterator
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


class _Prepared:
    """A schema prepared once, and what it held right after: its catalog and rows."""

    def __init__(self, schema: str, catalog: object, rows: dict[str, list[tuple]]) -> None:
        self.schema, self.catalog, self.rows = schema, catalog, rows


_prepared: _Prepared | None = None


def _catalog(conn: psycopg.Connection, schema: str) -> object:
    """What a test could have changed in the schema's definition (relations, triggers)."""
    return conn.execute(
        "SELECT array_agg(relname || ':' || relkind::text ORDER BY relname), "
        "(SELECT count(*) FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid "
        " WHERE r.relnamespace = %s::regnamespace) "
        "FROM pg_class WHERE relnamespace = %s::regnamespace", (schema, schema)).fetchone()


def _tables(conn: psycopg.Connection, schema: str) -> list[str]:
    return [name for (name,) in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,))]


def _drop(schema: str) -> None:
    try:
        with psycopg.connect(BASE_URL, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except psycopg.Error:
        pass  # the server went away first: nothing to clean up


def _reset(prepared: _Prepared) -> bool:
    """Empty the schema back to its just-prepared state; False when that is not possible
    (its definition changed, or a connection left behind still holds a lock)."""
    schema = prepared.schema
    try:
        with psycopg.connect(BASE_URL, autocommit=True) as admin:
            if _catalog(admin, schema) != prepared.catalog:
                return False
            with admin.transaction():
                admin.execute("SET LOCAL lock_timeout = '2s'")
                tables = ", ".join(f'"{schema}"."{t}"' for t in _tables(admin, schema))
                admin.execute(f"TRUNCATE {tables} RESTART IDENTITY")
                for (sequence,) in admin.execute(
                        "SELECT sequencename FROM pg_sequences WHERE schemaname = %s",
                        (schema,)).fetchall():
                    admin.execute(f'ALTER SEQUENCE "{schema}"."{sequence}" RESTART')
                for table, rows in prepared.rows.items():
                    marks = ", ".join(["%s"] * len(rows[0]))
                    with admin.cursor() as cursor:
                        cursor.executemany(
                            f'INSERT INTO "{schema}"."{table}" VALUES ({marks})', rows)
    except psycopg.errors.LockNotAvailable:
        return False
    return True


@contextmanager
def reused_schema(prepare: Callable[[str], None]) -> Iterator[str]:
    """A URL like ``fresh_schema``'s, on a schema this process prepared once with
    ``prepare(url)`` and empties back to that state before each test."""
    global _prepared
    base = postgres_url()
    if _prepared is not None and not _reset(_prepared):
        atexit.unregister(_drop)
        _drop(_prepared.schema)
        _prepared = None
    if _prepared is None:
        schema = f"runner_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        atexit.register(_drop, schema)
        prepare(schema_url(base, schema))
        with psycopg.connect(base, autocommit=True) as admin:
            rows = {t: admin.execute(f'SELECT * FROM "{schema}"."{t}"').fetchall()
                    for t in _tables(admin, schema)}
            _prepared = _Prepared(schema, _catalog(admin, schema),
                                  {t: r for t, r in rows.items() if r})
    yield schema_url(base, _prepared.schema)


@contextmanager
def role_without_create(url: str) -> Iterator[str]:
    """``url`` as a new role that may use its schema but create nothing in it."""
    schema = url.rsplit("%3D", 1)[1]
    role = f"runner_nocreate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'role-password'")
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
    scheme, _, rest = url.partition("://")
    try:
        yield f"{scheme}://{role}:role-password@{rest.rpartition('@')[2]}"
    finally:
        with psycopg.connect(postgres_url(), autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
