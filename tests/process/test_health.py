"""health: 0 with a live worker; 1 with a stale heartbeat, a stuck queue, a lagging scheduler."""

from __future__ import annotations

from runner.cli import main as cli
from tests.conftest import wait_for


def health(huey, capsys):
    capsys.readouterr()
    code = cli(["--settings", str(huey.settings.path), "health"])
    return code, capsys.readouterr().out.strip()


def test_healthy_with_a_live_worker_then_stale_when_its_heartbeat_stops(huey, make_worker,
                                                                        capsys):
    worker = make_worker()
    db = huey.jobs.db
    wait_for(lambda: db.query("SELECT 1 FROM runner_worker WHERE state='running'"),
             message="worker registered")
    assert health(huey, capsys) == (0, "ok")
    worker.kill()  # no clean exit: the row stays 'running' and its heartbeat ages
    db.write(lambda c: c.execute("UPDATE runner_worker SET heartbeat_at = heartbeat_at - 3600"))
    code, out = health(huey, capsys)
    assert code == 1 and out.startswith("unhealthy: worker heartbeat is stale")
    assert "\n" not in out


