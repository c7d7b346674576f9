"""A Redis reached through a Unix socket (``unix://PATH``), as ``[runner] redis_url`` allows:
``migrate-to`` copies to it, and the settings that name it open it."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.cli import main
from runner.settings_loader import load_settings
from runner.store.factory import open_store
from runner.store.states import JobState
from tests.conformance.helpers import job
from tests.redis_support import OwnRedis, new_prefix, redis_settings


@pytest.fixture
def socket_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    # A socket's path is limited to about 100 bytes: pytest's folders can be longer
    short = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))
    server = OwnRedis(tmp_path / "redis", unix_socket=short / "redis.sock")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(short, ignore_errors=True)


def test_a_file_is_copied_to_a_redis_on_a_unix_socket(huey, settings_file, tmp_path,
                                                      socket_redis, capsys):
    # Given a file with a waiting job, and a Redis listening on a Unix socket only
    now = time.time()
    waiting = job(now)
    huey.jobs.store.enqueue([waiting], now=now)
    prefix = new_prefix()
    # When the file is copied to it
    assert main(["--settings", str(settings_file), "migrate-to",
                 f"{socket_redis.url}?prefix={prefix}"]) == 0
    assert f'redis_url = "{socket_redis.url}"' in capsys.readouterr().out
    # Then the workers' settings naming that socket find the job waiting there
    settings = load_settings(redis_settings(tmp_path, prefix, url=socket_redis.url),
                             environ={})
    store = open_store(settings)
    try:
        assert store.get_job(waiting.id).state == JobState.AVAILABLE
    finally:
        store.close()
