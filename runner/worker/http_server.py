"""The worker's optional HTTP listener: ``/metrics`` (Prometheus) and ``/healthz``.

Off unless ``[metrics] listen = "127.0.0.1:9464"`` is set. It binds loopback
addresses only, unless ``allow_remote = true`` says otherwise: the metrics
name tasks and queues, and there is no authentication.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from runner.config import Settings, parse_section
from runner.errors import ConfigError
from runner.readmodel.health import HealthReport
from runner.readmodel.metrics import collect
from runner.readmodel.prometheus import CONTENT_TYPE, render
from runner.store.db import Database

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricsSection:
    """``[metrics]``: the worker's HTTP listener (needs a restart to change)."""

    listen: str = ""
    """``host:port`` to serve ``/metrics`` and ``/healthz`` on; "" = off."""
    allow_remote: bool = False
    """Allow a non-loopback ``listen`` address."""


def metrics_settings(settings: Settings) -> MetricsSection:
    """The validated ``[metrics]`` table."""
    section = parse_section(settings, "metrics", MetricsSection)
    if section.listen:
        host, port = parse_listen(section.listen, settings)
        if not section.allow_remote and not is_loopback(host):
            raise ConfigError(f"{settings.path or 'settings'}: [metrics] listen {host!r} is not "
                              "a loopback address; set allow_remote = true to serve it")
    return section


def parse_listen(text: str, settings: Settings) -> tuple[str, int]:
    """``"host:port"`` (``[::1]:9464`` for IPv6) as (host, port)."""
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{settings.path or 'settings'}: [metrics] listen must be "
                          f"'host:port', got {text!r}")
    if ":" in host and not bracketed:
        raise ConfigError(f"{settings.path or 'settings'}: [metrics] listen {text!r}: an IPv6 "
                          f"address goes in brackets, e.g. '[{host}]:{port}'")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class MetricsServer:
    """``start()``/``stop()`` around a threading HTTP server."""

    def __init__(self, db: Database, host: str, port: int,
                 health: Callable[[], HealthReport]) -> None:
        self.db = db
        self.health = health
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.handle(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                logger.debug("%s " + format, self.address_string(), *args)

        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self.httpd = server_class((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self.httpd.server_address[1]

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="runner-metrics",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                status, body, kind = 200, render(collect(self.db)), CONTENT_TYPE
            elif path == "/healthz":
                report = self.health()
                status = 200 if report.ok else 503
                body, kind = report.reason + "\n", "text/plain; charset=utf-8"
            else:
                status, body, kind = 404, "not found: try /metrics or /healthz\n", "text/plain"
        except Exception as exc:
            logger.exception("metrics request %s failed", path)
            status, body, kind = 500, f"error: {exc}\n", "text/plain"
        finally:
            self.db.close()
        data = body.encode()
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
