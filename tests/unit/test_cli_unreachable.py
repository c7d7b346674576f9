"""python -m runner on a database server that does not answer: one line naming it, exit 73
(health: unhealthy, exit 1)."""

from __future__ import annotations

import logging
import socket

import pytest

from runner.cli import main
from runner.store.factory import PROBE_WAIT
from tests.conftest import write_settings
from tests.redis_support import free_port, redis_settings


@pytest.mark.parametrize("command", [["jobs"], ["retry", "--all"]])
def test_a_command_on_a_redis_server_that_is_down_says_so_in_one_line(tmp_path, capsys,
                                                                       command):
    port = free_port()  # nothing listens there
    settings = redis_settings(tmp_path, "down", url=f"redis://127.0.0.1:{port}/0")
    assert main(["--settings", str(settings), *command]) == 73
    err = capsys.readouterr().err
    assert err.startswith(f"error: redis://127.0.0.1:{port}/0 (prefix down): cannot connect "
                          f"to Redis within {PROBE_WAIT:g}s"), err
    assert "Connection refused" in err and len(err.strip().splitlines()) == 1, err


def test_a_command_on_a_postgres_server_that_is_down_says_so_in_one_line(tmp_path, capsys,
                                                                          monkeypatch):
    # As in a shell: no logging configured (Python prints warnings of libraries to stderr)
    monkeypatch.setattr(logging.root, "handlers", [])
    port = free_port()  # nothing listens there
    settings = write_settings(tmp_path, worker={"queue_type": "postgres"})
    settings.write_text(settings.read_text().replace(
        'database = "jobs.db"', f'database = "postgresql://postgres@127.0.0.1:{port}/test"'))
    assert main(["--settings", str(settings), "jobs"]) == 73
    err = capsys.readouterr().err
    assert f"cannot connect to PostgreSQL within {PROBE_WAIT:g}s" in err, err
    assert "Connection refused" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("scheme", ["redis", "postgresql"])
def test_a_command_gives_up_on_a_server_that_accepts_but_never_answers(tmp_path, capsys,
                                                                     monkeypatch, scheme):
    # Given a server that takes the connection and says nothing (hung, or a firewall
    # holding the packets): a writer would wait out a restart, a command does not
    monkeypatch.setattr(logging.root, "handlers", [])
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        port = hung.getsockname()[1]
        if scheme == "redis":
            settings = redis_settings(tmp_path, "hung", url=f"redis://127.0.0.1:{port}/0")
        else:
            settings = write_settings(tmp_path, worker={"queue_type": "postgres"})
            settings.write_text(settings.read_text().replace(
                'database = "jobs.db"',
                f'database = "postgresql://postgres@127.0.0.1:{port}/test"'))
        # When a command looks at the jobs, Then it gives up after the probe's wait
        assert main(["--settings", str(settings), "jobs"]) == 73
    err = capsys.readouterr().err
    assert f"within {PROBE_WAIT:g}s" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("scheme", ["redis", "postgresql"])
def test_health_on_a_server_that_is_down_is_unhealthy_exit_1(tmp_path, capsys, monkeypatch,
                                                              scheme):
    # A probe reads health's exit code: 0 or 1, whatever is wrong
    monkeypatch.setattr(logging.root, "handlers", [])
    port = free_port()  # nothing listens there
    if scheme == "redis":
        settings = redis_settings(tmp_path, "down", url=f"redis://127.0.0.1:{port}/0")
    else:
        settings = write_settings(tmp_path, worker={"queue_type": "postgres"})
        settings.write_text(settings.read_text().replace(
            'database = "jobs.db"', f'database = "postgresql://postgres@127.0.0.1:{port}/test"'))
    assert main(["--settings", str(settings), "health"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("unhealthy: database: ") and "Connection refused" in out, out
    assert len(out.strip().splitlines()) == 1, out
