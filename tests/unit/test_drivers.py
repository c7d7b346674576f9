"""huey and peewee load without the Redis and PostgreSQL drivers, which load when needed.

Each test runs a fresh interpreter: what a process imported first decides what it loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid

import pytest

from runner.drivers import _Refused
from tests.conftest import ROOT
from tests.postgres_support import postgres_url
from tests.redis_support import REDIS_URL, redis_or_skip


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_runner_and_its_cli_loads_neither_driver():
    loaded = json.loads(run_python(
        "import json, sys\n"
        "import runner, runner.cli, runner.worker, runner.store.sqlite, runner.store.transfer\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "                        if m.partition('.')[0] in ('redis', 'psycopg'))))\n"))
    assert loaded == []


def test_the_redis_backend_still_imports_its_driver():
    out = run_python(
        "import runner\n"
        "from runner.store.redis import RedisStore\n"
        "import redis\n"
        "print(redis.Redis.__name__)\n")
    assert out.strip() == "Redis"


def _huey_redis() -> str:
    redis_or_skip()
    return f"RedisHuey('test-drivers-{uuid.uuid4().hex}', url={REDIS_URL!r})"


def _huey_postgres() -> str:
    return f"PostgresHuey('test_drivers_{uuid.uuid4().hex[:12]}', dsn={postgres_url()!r})"


@pytest.mark.parametrize("make", [_huey_redis, _huey_postgres], ids=["redis", "postgres"])
def test_hueys_own_storages_work_in_a_process_that_imported_the_runner_first(make):
    out = run_python(
        "import runner\n"
        "from huey import PostgresHuey, RedisHuey\n"
        f"huey = {make()}\n"
        "huey.storage.enqueue(b'payload')\n"
        "print(bytes(huey.storage.dequeue()).decode(), huey.storage.queue_size())\n"
        "huey.storage.flush_all()\n")
    assert out.split() == ["payload", "0"]


def test_peewees_postgresql_database_works_in_a_process_that_imported_the_runner_first():
    url = postgres_url()
    out = run_python(
        "import runner, runner.store.sqlite\n"
        "import peewee\n"
        "from psycopg.conninfo import conninfo_to_dict\n"
        f"params = conninfo_to_dict({url!r})\n"
        "db = peewee.PostgresqlDatabase(params.pop('dbname'), **params)\n"
        "print(type(db._adapter).__name__, db.execute_sql('SELECT 41 + 1').fetchone()[0])\n")
    assert out.split() == ["Psycopg3Adapter", "42"]


def test_a_driver_is_refused_to_the_thread_loading_huey_alone():
    # Given the refusal huey loads under, made in this thread
    refused = _Refused(["redis"])
    # When another thread looks for redis meanwhile, it is left to the other finders
    seen: list[object] = []
    other = threading.Thread(target=lambda: seen.append(refused.find_spec("redis.client")))
    other.start()
    other.join()
    assert seen == [None]
    # while this thread is refused redis and its submodules, and nothing else
    for name in ("redis", "redis.exceptions"):
        with pytest.raises(ModuleNotFoundError, match=name):
            refused.find_spec(name)
    assert refused.find_spec("redislike") is None
