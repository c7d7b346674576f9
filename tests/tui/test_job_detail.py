"""Job detail: result, next attempt, logs key, copy as JSON, one traceback each."""

from __future__ import annotations

import json
import logging
import time

import pytest
from textual.widgets import Log, Static

from runner.store.sqlite import logs as logstore
from runner.store.sqlite.db import Database
from runner.store.sqlite.queries import get_job, job_errors
from runner.testing import drain
from runner.worker.log_config import LoggingSection
from runner.worker.log_sink import LogSink
from tests import jobs
from tests.tui import dashboard_jobs
from tests.tui.conftest import drive, settle
from tui.app import make_app
from tui.screens.job_detail import JobDetailScreen
from tui.screens.logs import LogsScreen


def detail_text(app) -> str:
    return str(app.screen.query_one("#detail", Static).render())


async def open_job(app, pilot, job_id: str) -> None:
    app.push_screen(JobDetailScreen(job_id))
    await settle(app, pilot)


def test_completed_job_shows_its_result_without_consuming_it(huey):
    job = jobs.add(2, 40)
    drain()
    path = huey.jobs.path
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await open_job(app, pilot, job.id)
        text = detail_text(app)
        assert "Result" in text and "\n42\n" in text

    drive(make_app(db=path, refresh=60), scenario)
    assert job.get() == 42  # the caller still gets it


def test_retrying_job_says_when_the_next_attempt_runs(huey):
    job = jobs.fails_with_a_long_backoff("later")  # its retry cannot come due in the drain
    drain()  # first attempt fails; the retry waits
    path = huey.jobs.path
    row = get_job(huey.jobs.db, job.id)
    huey.jobs.db.close()
    assert row.state == "retrying"

    async def scenario(app, pilot):
        await open_job(app, pilot, job.id)
        assert "next attempt in 42s" in detail_text(app)
        assert "attempt 2 of 3" in detail_text(app)

    drive(make_app(db=path, refresh=60, clock=lambda: row.run_at - 42), scenario)


@pytest.mark.parametrize("enqueue, blocks", [
    (lambda: jobs.always_fails("boom"), 1),
    (lambda: dashboard_jobs.fails_while_handling("db"), 2),
], ids=["one exception", "chained"])
def test_each_traceback_is_shown_once(huey, enqueue, blocks):
    # The worker's log sink stores huey's "Unhandled exception" record with the whole
    # traceback (huey's and the runner's frames too); the job keeps it from the task's frame.
    sink = LogSink(huey.jobs.store, LoggingSection(), worker="w-1")
    root = logging.getLogger()
    root.addHandler(sink)
    try:
        job = enqueue()
        drain(include_scheduled=True)
    finally:
        root.removeHandler(sink)
        sink.stop()
    path = huey.jobs.path
    errors = job_errors(huey.jobs.db, job.id)
    huey.jobs.db.close()
    assert len(errors) == 3 and all("huey" not in e.traceback for e in errors)

    async def scenario(app, pilot):
        await open_job(app, pilot, job.id)
        text = detail_text(app)
        assert text.count("Unhandled exception in task") == 3
        assert text.count("Traceback (most recent call last)") == 3 * blocks
        assert text.count("(traceback above)") == 3
        assert "huey" not in text

    drive(make_app(db=path, refresh=60), scenario)


def test_l_opens_the_logs_of_the_job(huey, seeded):
    job = seeded.completed[0]
    db = Database(seeded.path)
    db.write(lambda conn: logstore.insert_logs(conn, [
        (time.time(), 20, "app", "mine", job, "add", None),
        (time.time(), 20, "app", "someone else's", seeded.completed[1], "add", None),
        (time.time(), 20, "runner", "worker line", None, None, "w-1")]))
    db.close()

    async def scenario(app, pilot):
        await open_job(app, pilot, job)
        await pilot.press("l")
        await settle(app, pilot)
        await settle(app, pilot)
        assert isinstance(app.screen, LogsScreen)
        log = app.screen.query_one(Log)
        assert [line.split()[-1] for line in log.lines] == ["mine"]
        assert "job" in str(app.screen.query_one("#logs-line", Static).render())

    drive(make_app(db=seeded.path, refresh=60), scenario)


def test_shift_y_copies_the_job_as_json(huey, seeded):
    async def scenario(app, pilot):
        await open_job(app, pilot, seeded.dead[0])
        await pilot.press("Y")
        await pilot.pause()
        copied = json.loads(app.clipboard)
        assert copied["job"]["id"] == seeded.dead[0]
        assert copied["job"]["state"] == "dead"
        assert copied["job"]["args"] == {"args": ["boom"], "kwargs": {}}
        assert [a["attempt"] for a in copied["attempts"]] == [1, 2, 3]
        assert copied["attempts"][0]["traceback"].startswith("Traceback")

    drive(make_app(db=seeded.path, refresh=60), scenario)


def test_a_job_with_long_arguments_shows_them(huey):
    # Arguments past 2,000 characters are stored cut short: an unclosed '[' is left.
    job = jobs.noop(list(range(1000)))
    path = huey.jobs.path
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await open_job(app, pilot, job.id)
        text = detail_text(app)
        assert text.startswith(f"noop  {job.id}"), text[:200]
        arguments = text.splitlines()[text.splitlines().index("Arguments") + 1]
        assert arguments.startswith('{"args": [[0, 1, 2, 3') and arguments.endswith("...")
        assert "Timeline" in text and "\nLog (0 lines)" in text

    drive(make_app(db=path, refresh=60), scenario)


def test_brackets_and_markup_in_an_error_message_read_literally(huey):
    message = r"row [3 of [bold]batch[/] [/] \[x] [link=http://x]é€😀[/link]"
    job = jobs.always_fails(message)
    drain(include_scheduled=True)
    path = huey.jobs.path
    huey.jobs.db.close()

    async def scenario(app, pilot):
        await open_job(app, pilot, job.id)
        text = detail_text(app)
        assert f"reason: error: always fails {message}" in text, text[:300]
        assert text.count(f"ValueError: always fails {message}") == 3

    drive(make_app(db=path, refresh=60), scenario)


def _shows_attempt(huey, job_id: str, listed: str, detailed: str, wrong: str) -> None:
    """The Jobs list shows ``listed`` for the job and its detail ``detailed``, never ``wrong``."""
    from tui.widgets.keyed_table import KeyedTable

    path = huey.jobs.path
    huey.jobs.store.close()

    async def scenario(app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        table = app.screen.query_one("#jobs", KeyedTable)
        assert str(table.get_row(job_id)[4]) == listed
        await open_job(app, pilot, job_id)
        text = detail_text(app)
        assert detailed in text and wrong not in text

    drive(make_app(db=path, refresh=60), scenario)


def test_a_job_run_again_after_a_crash_shows_its_attempt_truly(huey):
    from tests.conftest import run_again_after_a_crash

    _shows_attempt(huey, run_again_after_a_crash(huey), "1/1 +1 crash",
                   "attempt 2 (1 of 1 allowed +1 crash)", "2/1")


def test_a_job_whose_task_asked_for_attempts_shows_them_apart(huey):
    # Dead after 4 attempts: one asked for by the task (Retry), 3 counted by its limit
    job_id = jobs.asks_a_retry_then_loses_its_connection("tui").id
    drain(include_scheduled=True)
    _shows_attempt(huey, job_id, "3/3 +1 requested",
                   "attempt 4 (3 of 3 allowed +1 requested)", "4/3")
