"""runner.progress() inside a task is visible from other processes while the job runs."""

from __future__ import annotations

from runner import get_progress
from runner.cli import main as cli
from runner.store.sqlite import queries
from tests import jobs
from tests.conftest import wait_for


def test_progress_of_a_running_job_is_visible_from_another_process(huey, make_worker, tmp_path,
                                                                   capsys):
    # Given a job that reports 10 steps, then waits on a gate file
    gate = tmp_path / "gate"
    gate.write_text("")
    result = jobs.reports_progress(10, str(gate))
    # When a real worker runs it
    worker = make_worker()
    db = huey.jobs.db
    # Then this process sees the last value while the job is still executing
    wait_for(lambda: (p := get_progress(result.id, huey.jobs.store)) is not None and p.done == 10,
             message="progress 10/10")
    job = queries.get_job(db, result.id)
    assert job.state == "executing"
    assert (job.progress_done, job.progress_total, job.progress_message) == (10, 10, "step 10")
    assert get_progress(result.id, huey.jobs.store).fraction == 1.0
    # And the CLI shows it
    capsys.readouterr()
    assert cli(["--settings", str(huey.settings.path), "show", result.id]) == 0
    assert "100% step 10" in capsys.readouterr().out
    gate.unlink()
    assert result.get(blocking=True, timeout=15) == 10
    assert worker.terminate() == 0


