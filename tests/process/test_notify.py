"""systemd notify: READY, WATCHDOG pings and STOPPING reach NOTIFY_SOCKET, in that order."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import wait_for


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    yield sock, str(path)
    sock.close()


def receive(sock, messages):
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except (TimeoutError, BlockingIOError):
        return messages


def test_worker_sends_ready_watchdog_pings_then_stopping(make_worker, notify_socket):
    sock, path = notify_socket
    worker = make_worker(NOTIFY_SOCKET=path, WATCHDOG_USEC="300000")
    messages: list[str] = []
    wait_for(lambda: sum("WATCHDOG=1" in m for m in receive(sock, messages)) >= 3,
             message="three watchdog pings")
    assert worker.terminate() == 0
    receive(sock, messages)
    kinds = [next(line for line in m.splitlines() if "=" in line).split("=")[0]
             for m in messages]
    assert kinds[0] == "READY"
    assert "STATUS=running: 4 threads, 0 running" in messages[0]
    stop = kinds.index("STOPPING")
    assert set(kinds[1:stop]) <= {"WATCHDOG", "STATUS"} and kinds.count("WATCHDOG") >= 3
    assert "WATCHDOG" not in kinds[stop:]


