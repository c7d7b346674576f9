"""systemd notify: READY, WATCHDOG pings and STOPPING reach NOTIFY_SOCKET, in that order."""

from __future__ import annotations

import signal
import socket
import sqlite3
import time

import pytest

from tests.conftest import wait_for, write_settings


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


@pytest.mark.solo  # measures wall-clock precision
def test_watchdog_keeps_pinging_while_another_process_holds_the_write_lock(
        make_worker, notify_socket, tmp_path):
    # Given a worker under a 1 s watchdog whose heartbeat is stale after 1.5 s
    sock, path = notify_socket
    settings = write_settings(tmp_path, name="watchdog.toml",
                              extra="[health]\nheartbeat_max_age = 1.5\n")
    worker = make_worker(settings=settings, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
    messages: list[str] = []
    wait_for(lambda: any("READY=1" in m for m in receive(sock, messages)), message="READY")
    wait_for(lambda: (tmp_path / "jobs.db").exists(), message="the database")
    # When another process holds the write lock for 11 s: eleven times WatchdogSec, and
    # longer than a heartbeat may be stale (at least 10 s) before health says so
    holder = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None, timeout=10)
    holder.execute("BEGIN IMMEDIATE")
    pings: list[float] = [time.monotonic()]
    seen: list[str] = []
    try:
        until = time.monotonic() + 11.0
        while time.monotonic() < until:
            for message in receive(sock, []):
                seen.append(message)
                if "WATCHDOG=1" in message:
                    pings.append(time.monotonic())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    pings.append(time.monotonic())
    # Then the pings never stopped for as long as WatchdogSec
    gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
    assert len(pings) >= 20 and max(gaps) < 1.0, gaps
    # And STATUS said the database was stuck, then recovered once it was released
    assert any("STATUS=database stuck; no heartbeat written since" in m for m in seen), seen
    wait_for(lambda: any("STATUS=running:" in m for m in receive(sock, seen)),
             message="STATUS back to running")
    assert worker.proc.poll() is None
    assert worker.terminate() == 0


def test_reload_tells_systemd_when_it_begins_and_when_it_is_applied(
        make_worker, notify_socket):
    sock, path = notify_socket
    worker = make_worker(NOTIFY_SOCKET=path)
    messages: list[str] = []
    wait_for(lambda: any("READY=1" in m for m in receive(sock, messages)), message="READY")
    worker.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: any("READY=1" in m for m in receive(sock, messages)[1:]),
             message="READY after the reload")
    kinds = [m.splitlines()[0] for m in messages if "WATCHDOG" not in m]
    reloading = kinds.index("RELOADING=1")
    assert "READY=1" in kinds[reloading + 1:]
    reload_message = next(m for m in messages if m.startswith("RELOADING=1"))
    assert "MONOTONIC_USEC=" in reload_message
    assert worker.terminate() == 0
