"""Scheduled tasks used by the scheduler tests (imported by worker subprocesses too)."""

from __future__ import annotations

import asyncio

from runner import scheduled_task
from tests.jobs import record


@scheduled_task(name="quarter_hourly", cron="*/15 * * * *", retry_limit=0)
def quarter_hourly(label: str = "q") -> str:
    record(label)
    return label


@scheduled_task(name="every_second", cron="*/1 * * * * *", retry_limit=0)
def every_second() -> None:
    return None


@scheduled_task(name="async_hourly", cron="@hourly", retry_limit=0, args=(2,),
                kwargs={"factor": 21})
async def async_hourly(value: int, factor: int = 1) -> int:
    await asyncio.sleep(0)
    return value * factor


@scheduled_task(name="unique_nightly", cron="0 3 * * *", retry_limit=0, overlap="allow",
                unique_key="nightly-report", unique_for=3600)
def unique_nightly() -> str:
    return "report"


@scheduled_task(name="tokyo_morning", cron="30 9 * * *", timezone="Asia/Tokyo", retry_limit=0)
def tokyo_morning() -> None:
    return None


@scheduled_task(name="one_at_a_time", cron="*/15 * * * *", retry_limit=0, overlap="queue_one")
def one_at_a_time() -> None:
    return None
