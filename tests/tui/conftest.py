"""A jobs database seeded through the runner's own API, and a Pilot driver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.runner_huey import RunnerHuey
from runner.testing import drain
from tests import jobs
from tests.tui import dashboard_jobs
from tui.app import DashboardApp, make_app


@dataclass
class Seeded:
    """What the seed put in the database."""

    path: Path
    completed: list[str]
    dead: list[str]
    fatal: str
    waiting: list[str]
    mail: list[str]


@pytest.fixture
def seeded(huey: RunnerHuey) -> Seeded:
    """3 completed, 2 dead (one after 3 failed attempts), 4 waiting default, 2 waiting mail."""
    completed = [jobs.add(i, i).id for i in range(3)]
    drain()
    dead = [jobs.always_fails("boom").id]
    drain(include_scheduled=True)
    fatal = jobs.fatal_fails().id
    drain()
    waiting = [jobs.noop(i).id for i in range(4)]
    mail = [dashboard_jobs.send_mail(f"user{i}@example.com").id for i in range(2)]
    # Into the jobs table, where the tests' own statements find them (the dashboard would
    # move them itself: see test_jobs_no_worker_has_claimed_show_on_the_dashboard).
    huey.jobs.store.absorb_intake()
    huey.jobs.db.close()
    return Seeded(huey.jobs.path, completed, [*dead, fatal], fatal, waiting, mail)


async def wait_poll(app: DashboardApp, pilot, *, since: int | None = None,
                    timeout: float = 10.0) -> None:
    """Wait until a poll newer than ``since`` (default: now) has been applied."""
    target = (app.polls if since is None else since) + 1
    deadline = time.monotonic() + timeout
    while app.polls < target:
        if time.monotonic() > deadline:
            raise AssertionError(f"no poll applied within {timeout}s")
        await app.workers.wait_for_complete()
        await pilot.pause()


async def settle(app: DashboardApp, pilot) -> None:
    """Let every running worker (writes, polls) finish and the UI apply them."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


Scenario = Callable[[DashboardApp, object], Awaitable[None]]


def drive(app: DashboardApp, scenario: Scenario, size: tuple[int, int] = (140, 40), *,
          notifications: bool = False) -> None:
    """Run ``scenario(app, pilot)`` headless, after the first poll has been shown.

    ``notifications`` shows the toasts (off by default, as in Textual's tests).
    """
    async def main() -> None:
        async with app.run_test(size=size, notifications=notifications) as pilot:
            await wait_poll(app, pilot, since=0)
            await scenario(app, pilot)
    asyncio.run(main())


@pytest.fixture
def dashboard(seeded: Seeded) -> Callable[..., DashboardApp]:
    """Factory of dashboards on the seeded file; slow refresh so only explicit polls run."""
    def make(**options: object) -> DashboardApp:
        options.setdefault("refresh", 60.0)
        return make_app(db=seeded.path, **options)  # type: ignore[arg-type]
    return make
