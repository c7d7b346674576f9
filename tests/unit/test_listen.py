"""``[metrics] listen``: host:port, IPv6 in brackets, validated before anything binds; an
address the worker cannot have is said as the setting it is."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from runner.errors import EX_TEMPFAIL, AddressInUse, ConfigError, DatabaseCorrupt
from runner.readmodel.health import HealthReport
from runner.runner_huey import RunnerHuey
from runner.settings_loader import load_settings, parse_settings
from runner.worker.http_server import MetricsServer, bind_metrics, metrics_settings
from runner.worker.manager import Manager
from tests.conftest import write_settings


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
    server = MetricsServer("::1", 0)
    server.start(huey.jobs.db, lambda: HealthReport(True, "ok"), lambda: "")
    try:
        with urllib.request.urlopen(f"http://[::1]:{server.port}/healthz", timeout=10) as reply:
            assert reply.read() == b"ok\n"
    finally:
        server.stop()


def test_an_address_another_process_listens_on_is_a_temporary_failure():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(AddressInUse) as error:
            bind_metrics(settings(listen))
    assert error.value.exit_code == EX_TEMPFAIL
    assert str(error.value).startswith(f"settings: [metrics] listen {listen}: address already "
                                       "in use (another worker's exporter?)")


def test_a_worker_that_fails_to_start_lets_its_address_go(tmp_path, monkeypatch):
    # Given a worker whose address is bound before its database turns out corrupt (and no
    # schedules: those other tests of this process defined belong to another runner, whose
    # tasks this one cannot write)
    from runner.scheduling.definitions import registry

    monkeypatch.setattr(registry, "_defs", {})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "corrupt.db").write_bytes(b"not a database" * 100)
    path = write_settings(tmp_path, name="corrupt.toml",
                          extra=f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    path.write_text(path.read_text().replace('"jobs.db"', '"corrupt.db"'))
    with pytest.raises(DatabaseCorrupt):
        Manager(load_settings(path, environ={}), huey=RunnerHuey("corrupt")).run()
    # Then the address is free again: the next start of the process can have it
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))
        again.listen(1)
