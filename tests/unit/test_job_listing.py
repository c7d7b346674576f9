"""What the `jobs` listing and the dashboard's Jobs table say of a job's errors."""

from __future__ import annotations

import time

from runner.cli import main as cli
from runner.testing import drain
from tests import jobs
from tui.screens.jobs import job_cells


def test_a_listing_names_the_error_type_and_says_nothing_of_errors_a_job_got_past(
        huey, tmp_path, capsys):
    # Given a job dead of a KeyError, and two that completed after failed attempts
    dead = jobs.key_error()
    recovered = jobs.fails_then_works(str(tmp_path / "counter"), 1)
    retried = jobs.retry_twice("listing")
    drain(include_scheduled=True, timeout=10)
    rows = {job.id: job for job in huey.jobs.store.list_jobs()}
    assert [rows[r.id].state for r in (dead, recovered, retried)] == [
        "dead", "completed", "completed"]
    # When the CLI lists them
    capsys.readouterr()
    assert cli(["--settings", str(huey.settings.path), "jobs"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:-1]}
    # Then the dead job's error has its type, and the completed ones show none
    assert lines[dead.id[-12:]].rstrip().endswith("KeyError: 'missing'")
    for done in (recovered, retried):
        listed = lines[done.id[-12:]]
        assert "attempt 1 fails" not in listed and "retry requested" not in listed, listed
    # And the dashboard's Jobs table says the same
    now = time.time()
    assert job_cells(rows[dead.id], now)[-1] == "KeyError: 'missing'"
    assert [job_cells(rows[r.id], now)[-1] for r in (recovered, retried)] == ["", ""]


def test_an_error_without_a_message_or_of_several_lines_is_listed_on_one_line():
    import dataclasses

    from runner.store.rows import JobRow

    fields = {f.name: None for f in dataclasses.fields(JobRow)}
    base = JobRow(**{**fields, "state": "dead"})
    bare = dataclasses.replace(base, error_type="ValueError", error_message="ValueError()")
    lines = dataclasses.replace(base, error_type="RuntimeError",
                                error_message="line one\nline two")
    assert bare.listed_error == "ValueError"
    assert lines.listed_error == "RuntimeError: line one …"


def test_the_cli_lists_a_cancel_reason_where_the_dashboard_does(huey, capsys):
    later = jobs.add.schedule((1, 2), delay=600)
    huey.jobs.store.cancel_jobs([later.id], now=time.time())
    [row] = [j for j in huey.jobs.store.list_jobs() if j.id == later.id]
    capsys.readouterr()
    assert cli(["--settings", str(huey.settings.path), "jobs"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith(later.id[-12:])]
    shown = job_cells(row, time.time())[-1]
    assert shown and line.rstrip().endswith(shown), (line, shown)
