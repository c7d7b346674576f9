"""python -m runner on a database server that does not answer, or another kind of server on
its port: one line naming it, exit 73 (health: unhealthy, exit 1)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


#: What a web server answers a request it cannot read.
WEB_PAGE = (b"HTTP/1.0 400 Bad request\r\nContent-Type: text/html\r\n\r\n"
            b"<!DOCTYPE html><html>bad request</html>\n")


def redis_replies(data: bytes) -> bytes:
    """Replies as Redis gives them to the commands in ``data`` (each an array: a
    ``*<count>`` line, then a length line and a value line per part)."""
    lines, replies, at = data.split(b"\r\n"), [], 0
    while at < len(lines) and lines[at].startswith(b"*"):
        parts = int(lines[at][1:])
        command = lines[at + 2].upper()
        at += 1 + 2 * parts
        replies.append(b"%1\r\n$5\r\nproto\r\n:3\r\n" if command == b"HELLO" else
                       b"+PONG\r\n" if command == b"PING" else b"+OK\r\n")
    return b"".join(replies)


@contextmanager
def web_server(*, redis_first: bool = False) -> Iterator[int]:
    """A port where a web server answers whatever it is sent with an HTML error page (the
    URL's port is another service's); yields the port. With ``redis_first``, the first
    connection is answered as Redis would (a proxy that switches backends meanwhile)."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(16)

    def serve() -> None:
        first = redis_first
        while True:
            try:
                conn, _ = listening.accept()
            except OSError:  # closed: the test is over
                return
            as_redis, first = first, False
            with conn:
                try:
                    while as_redis and (data := conn.recv(4096)):
                        conn.sendall(redis_replies(data))
                    if not as_redis:
                        conn.recv(4096)
                        conn.sendall(WEB_PAGE)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listening.getsockname()[1]
    finally:
        listening.close()
        thread.join(5)


def settings_on(tmp_path: Path, scheme: str, port: int) -> Path:
    """Settings whose database is ``scheme``'s server at 127.0.0.1:``port``."""
    if scheme == "redis":
        return redis_settings(tmp_path, "web", url=f"redis://127.0.0.1:{port}/0")
    settings = write_settings(tmp_path, worker={"queue_type": "postgres"})
    settings.write_text(settings.read_text().replace(
        'database = "jobs.db"', f'database = "postgresql://postgres@127.0.0.1:{port}/test"'))
    return settings


@pytest.mark.parametrize("scheme", ["redis", "postgresql"])
def test_a_command_on_another_kind_of_server_says_so_in_one_line(tmp_path, capsys,
                                                                 monkeypatch, scheme):
    monkeypatch.setattr(logging.root, "handlers", [])
    with web_server() as port:
        assert main(["--settings", str(settings_on(tmp_path, scheme, port)), "jobs"]) == 73
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"127.0.0.1:{port}" in err, err
    assert "URL right" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("scheme", ["redis", "postgresql"])
def test_health_on_another_kind_of_server_is_unhealthy_exit_1(tmp_path, capsys, monkeypatch,
                                                              scheme):
    monkeypatch.setattr(logging.root, "handlers", [])
    with web_server() as port:
        assert main(["--settings", str(settings_on(tmp_path, scheme, port)), "health"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("unhealthy: database: ") and f"127.0.0.1:{port}" in out, out
    assert len(out.strip().splitlines()) == 1, out


def test_health_is_unhealthy_when_the_server_stops_answering_as_redis_after_its_first_look(
        tmp_path, capsys, monkeypatch):
    # Given a server that answers the reachability probe as Redis, then not
    monkeypatch.setattr(logging.root, "handlers", [])
    with web_server(redis_first=True) as port:
        settings = settings_on(tmp_path, "redis", port)
        assert main(["--settings", str(settings), "health"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"unhealthy: database: redis://127.0.0.1:{port}/0"), out
    assert "Protocol error" in out and len(out.strip().splitlines()) == 1, out
