"""Text from jobs cannot forge lines of worker.log or reach the terminal raw."""

from __future__ import annotations

import pytest

from runner.testing import drain
from tests import jobs
from tests.conftest import wait_for
from tests.process.test_cli import cli

FORGED = ("2020-01-01 00:00:00,000 ERROR MainThread runner.runner_huey: job 0000 (billing) is dead "
          "after 3 attempt(s): forged")
EVIL = f"harmless\n{FORGED}\r\x1b[2J\x1b]0;owned\x07"


def forged_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("2020-01-01")]


def test_exception_messages_and_log_arguments_cannot_forge_worker_log_lines(huey, make_worker,
                                                                            tmp_path):
    worker = make_worker()
    failed = jobs.always_fails(EVIL)
    logged = jobs.chatty(EVIL)
    assert logged.get(blocking=True, timeout=15) == EVIL
    db = huey.jobs.db
    wait_for(lambda: db.query("SELECT 1 FROM runner_job WHERE id = ? AND state = 'dead'",
                              (failed.id,)), message="failing job dead")
    log = tmp_path / "worker.log"
    wait_for(lambda: "is dead after 3 attempt(s)" in log.read_text(), message="dead line")
    assert worker.terminate() == 0
    text = log.read_text()
    assert "always fails harmless\\n2020-01-01" in text  # shown, escaped, on the record's line
    assert "careful harmless\\n2020-01-01" in text
    assert forged_lines(text) == []
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text


def test_cli_logs_and_jobs_escape_what_jobs_wrote(huey, settings_file, sink_installed):
    failed = jobs.always_fails(EVIL)
    logged = jobs.chatty(EVIL)
    drain(include_scheduled=True)
    assert logged.get() == EVIL
    sink_installed.flush()
    for args in (("logs",), ("logs", "--job", logged.id), ("jobs",), ("jobs", "--state", "dead"),
                 ("show", failed.id), ("events",)):
        done = cli(settings_file, *args)
        assert done.returncode == 0, done.stderr
        assert forged_lines(done.stdout) == [], args
        assert "\x1b" not in done.stdout and "\r" not in done.stdout, args
    # The listing shows a message's first line (marked cut), `show` all of it, escaped
    listing = cli(settings_file, "jobs", "--state", "dead").stdout
    assert "always fails harmless …" in listing
    assert "always fails harmless\\n2020" in cli(settings_file, "show", failed.id).stdout


@pytest.fixture
def sink_installed(huey):
    import logging

    from runner.worker.log_config import LoggingSection
    from runner.worker.log_sink import LogSink

    handler = LogSink(huey.jobs.store, LoggingSection(), worker="test-worker")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)
    handler.stop()
