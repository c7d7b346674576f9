"""``[metrics] listen``: host:port, IPv6 in brackets, validated before anything binds."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from runner.config import parse_settings
from runner.errors import ConfigError
from runner.readmodel.health import HealthReport
from runner.worker.http_server import MetricsServer, metrics_settings


def settings(listen):
    return parse_settings({"metrics": {"listen": listen}})


@pytest.mark.parametrize(("listen", "message"), [
    ("::1:9100", "an IPv6 address goes in brackets, e.g. '[::1]:9100'"),
    ("127.0.0.1", "must be 'host:port'"),
    ("127.0.0.1:99999", "must be 'host:port'"),
    ("[::1]", "must be 'host:port'"),
])
def test_bad_listen_addresses_fail_validation(listen, message):
    with pytest.raises(ConfigError, match=r"\[metrics\] listen") as error:
        metrics_settings(settings(listen))
    assert message in str(error.value)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_a_bracketed_ipv6_loopback_address_is_served(huey):
    assert metrics_settings(settings("[::1]:9100")).listen == "[::1]:9100"
    server = MetricsServer(huey.jobs.db, "::1", 0, lambda: HealthReport(True, "ok"),
                           lambda: "")
    server.start()
    try:
        with urllib.request.urlopen(f"http://[::1]:{server.port}/healthz", timeout=10) as reply:
            assert reply.read() == b"ok\n"
    finally:
        server.stop()
