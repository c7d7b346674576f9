"""SIGHUP reloads settings; a broken file is rejected and the old settings stay."""

from __future__ import annotations

import signal

from runner.store.sqlite.queries import list_workers
from tests import jobs
from tests.conftest import wait_for


def test_sighup_with_a_broken_file_keeps_running_on_the_old_settings(huey, make_worker,
                                                                     settings_file):
    worker = make_worker()
    db = huey.jobs.db
    wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    good = settings_file.read_text()
    # When the file is broken and the worker gets SIGHUP
    settings_file.write_text(good + "\n[worker]\nnot valid toml = = =\n")
    worker.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "new settings rejected" in worker.output(), message="rejection logged")
    assert "TOML syntax error" in worker.output()
    # Then it still runs jobs with the old settings
    assert jobs.add(2, 3).get(blocking=True, timeout=10) == 5
    assert worker.proc.poll() is None
    # And a good file with a new log level is applied without a restart
    settings_file.write_text(good.replace("[worker]", "[worker]\nlog_level = \"DEBUG\""))
    worker.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "settings reloaded" in worker.output(), message="reload logged")
    jobs.add(1, 1).get(blocking=True, timeout=10)
    wait_for(lambda: "DEBUG" in worker.output(), message="debug lines")
    assert len(list_workers(db)) == 1  # same process: no re-exec
    assert worker.terminate() == 0
