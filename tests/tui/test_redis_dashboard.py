"""The dashboard on a Redis backend's data: the summary strip and the jobs screen."""

from __future__ import annotations

import time

from textual.widgets import Static

from runner.store.redis import RedisStore
from tests.conformance.helpers import failure, job
from tests.redis_support import REDIS_URL, new_prefix, redis_or_skip
from tests.tui.conftest import drive, settle
from tui.__main__ import parse_args
from tui.app import make_app
from tui.widgets.keyed_table import KeyedTable


def test_the_dashboard_shows_the_jobs_of_a_redis_backend():
    redis_or_skip()
    store = RedisStore(REDIS_URL, prefix=new_prefix())
    try:
        now = time.time()
        waiting, dead = job(now), job(now)
        store.enqueue([dead], now=now)
        [claimed] = store.claim(now=now, owner="tui-test:1:1", lease_seconds=30,
                                want=1).claimed
        store.bury(claimed.id, 1, failure(), worker="tui-test:1:1", now=now, reason="x")
        store.enqueue([waiting], now=now)
        url = f"{REDIS_URL}?prefix={store.prefix}"
        assert parse_args(["--redis", url]).db == url

        async def scenario(app, pilot):
            strip = str(app.screen.query_one("#summary", Static).render())
            assert "waiting: 1" in strip and "dead: 1" in strip, strip
            await pilot.press("2")
            await settle(app, pilot)
            table = app.screen.query_one("#jobs", KeyedTable)
            assert {k.value for k in table.rows} == {waiting.id, dead.id}

        drive(make_app(db=url, refresh=60), scenario)
    finally:
        store.delete_all()
        store.close()
