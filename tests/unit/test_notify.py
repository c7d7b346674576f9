"""systemd notify: READY, WATCHDOG pings and STOPPING reach NOTIFY_SOCKET, in that order."""

from __future__ import annotations

import socket
import time

from runner.worker.systemd import SystemdNotifier, watchdog_interval


def test_abstract_socket_and_watchdog_settings():
    name = f"jobrunner-test-{time.monotonic_ns()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2)
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready("hello")
        assert server.recv(100) == b"READY=1\nSTATUS=hello"
        notifier.close()
    finally:
        server.close()
    assert not SystemdNotifier({}).ready()
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
