"""Write the README's dashboard screenshots (SVG, 120x40) from a seeded demo database.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

The database is generated with fixed contents and a fixed clock (2026-01-05
09:30 UTC), and the status line shows a fixed read time, so a run changes the
pictures only when the dashboard changes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ["TZ"] = "UTC"
time.tzset()
# Nothing of this host in the pictures: no service environment file, and a node name no
# demo worker has (a worker of "this host" would be judged by its pid).
os.environ["RUNNER_ENV_FILE"] = ""
os.environ["RUNNER_NODE_NAME"] = "screenshots"

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed_dashboard import seed  # noqa: E402
from runner.store.rows import JobFilter  # noqa: E402
from runner.store.sqlite import logs as logstore  # noqa: E402
from runner.store.sqlite import workers  # noqa: E402
from runner.store.sqlite.db import Database  # noqa: E402
from tui.app import DashboardApp, make_app  # noqa: E402

NOW = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC).timestamp()
SIZE = (120, 40)
#: The read time the status line shows ("in 12 ms"): the measured one differs at every run.
READ_SECONDS = 0.012


def demo_database(path: Path) -> Path:
    """Five thousand jobs over a week, failures with tracebacks, log lines, two workers."""
    seed(path, jobs=5_000, logs=400, now=NOW)
    db = Database(path)
    for n, queues in enumerate((("default", "mail"), ("reports", "media", "maintenance"))):
        owner = f"app-{n + 1}:{4200 + n}:1"
        workers.register(db, owner, concurrency=8, queues=queues, now=NOW - 3600)
        db.write(lambda c, owner=owner: c.execute(
            "UPDATE runner_worker SET heartbeat_at = ?, rss_bytes = ?, cpu_percent = ? "
            "WHERE id = ?", (NOW - 1, 84_000_000, 23.0, owner)))
    # The newest retrying job waits for its next attempt and has log lines of its own.
    job_id, task = db.query("SELECT id, task FROM runner_job WHERE state = 'retrying' "
                            "ORDER BY created_at DESC LIMIT 1")[0]
    db.write(lambda c: c.execute("UPDATE runner_job SET run_at = ? WHERE id = ?",
                                 (NOW + 95, job_id)))
    db.write(lambda c: logstore.insert_logs(c, [
        (NOW - 80, 20, "app.tasks", "loading customer record", job_id, task, "app-1:4200:1"),
        (NOW - 79, 30, "app.tasks", "customer cache miss, asking the billing API", job_id,
         task, "app-1:4200:1")]))
    db.close()
    return path


async def settle(app: DashboardApp, pilot) -> None:  # noqa: ANN001
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def shoot(app: DashboardApp, out: Path) -> list[Path]:
    written = []

    def save(name: str, title: str) -> None:
        target = out / f"{name}.svg"
        target.write_text(app.export_screenshot(title=f"jobrunner dashboard: {title}"))
        written.append(target)

    async with app.run_test(size=SIZE) as pilot:
        while app.polls < 1:
            await settle(app, pilot)
        # Read the whole hour of history before the first picture.
        for _ in range(60):
            before = app.rates.loaded_since()
            await pilot.press("ctrl+r")
            await settle(app, pilot)
            if app.rates.loaded_since() == before:
                break
        save("overview", "Overview")
        await pilot.press("2")
        await settle(app, pilot)
        save("jobs", "Jobs")
        screen = app.screen
        screen.set_filter(JobFilter(state="retrying"))  # type: ignore[attr-defined]
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        save("job-detail", "Job detail")
        await pilot.press("escape")
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        await pilot.press("space")
        await settle(app, pilot)
        save("failures", "Failures")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots",
                        help="folder for the SVG files (default docs/screenshots)")
    args = parser.parse_args(argv)
    out = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    home = Path.cwd()
    # A folder of its own, so that two runs at once (test suites of two checkouts) do not
    # delete each other's database; entered, so that the status line shows the same
    # relative path at every run.
    with tempfile.TemporaryDirectory(prefix="jobrunner-screenshots-") as scratch:
        os.chdir(scratch)
        try:
            folder = Path("jobrunner-demo")
            folder.mkdir()
            path = demo_database(folder / "jobs.db")
            app = make_app(db=path, refresh=3600, clock=lambda: NOW)
            status_forms = app.status_forms
            app.status_forms = lambda outcome: status_forms(  # type: ignore[method-assign]
                replace(outcome, seconds=READ_SECONDS))
            for target in asyncio.run(shoot(app, out)):
                print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
        finally:
            os.chdir(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
