"""The worker's optional HTTP listener: ``/metrics`` (Prometheus) and ``/healthz``.

Off unless ``[metrics] listen = "127.0.0.1:9464"`` is set. It binds loopback
addresses only, unless ``allow_remote = true`` says otherwise: the metrics
name tasks and queues, and there is no authentication. GET and HEAD are
answered; scrapes run one at a time, so concurrent scrapers cannot pile up
memory or database reads in the worker.
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
from runner.readmodel.prometheus import CONTENT_TYPE
from runner.store.db import Database

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricsSection:
    """``[metrics]``: the worker's HTTP listener (needs a restart to change)."""

    listen: str = ""
    """``host:port`` to serve ``/metrics`` and ``/healthz`` on; "" = off."""
    allow_remote: bool = False
    """Allow a non-loopback ``listen`` address."""
    name: str = "worker"
    """This worker's ``worker`` label (with ``host``); give each worker of a host its own."""
    database: str = "elected"
    """Database-wide series in this worker's ``/metrics``: "elected" (one worker at a
    time serves them), "always", or "never" (scrape ``python -m runner metrics``)."""

DATABASE_MODES = ("elected", "always", "never")


def metrics_settings(settings: Settings) -> MetricsSection:
    """The validated ``[metrics]`` table."""
    section = parse_section(settings, "metrics", MetricsSection)
    where = settings.path or "settings"
    if section.database not in DATABASE_MODES:
        raise ConfigError(f"{where}: [metrics] database must be one of "
                          f"{', '.join(DATABASE_MODES)}, got {section.database!r}")
    if not section.name.strip():
        raise ConfigError(f"{where}: [metrics] name must not be empty")
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
                 health: Callable[[], HealthReport], metrics: Callable[[], str]) -> None:
        self.db = db
        self.health = health
        self.metrics = metrics
        self._scrape_lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.handle(self)

            def do_HEAD(self) -> None:  # noqa: N802
                server.handle(self, body=False)

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

    def handle(self, request: BaseHTTPRequestHandler, *, body: bool = True) -> None:
        path = request.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                with self._scrape_lock:
                    status, text, kind = 200, self.metrics(), CONTENT_TYPE
            elif path == "/healthz":
                with self._scrape_lock:
                    report = self.health()
                status = 200 if report.ok else 503
                text, kind = report.reason + "\n", "text/plain; charset=utf-8"
            else:
                status, text, kind = 404, "not found: try /metrics or /healthz\n", "text/plain"
        except Exception as exc:
            logger.exception("metrics request %s failed", path)
            status, text, kind = 500, f"error: {exc}\n", "text/plain"
        finally:
            self.db.close()
        data = text.encode()
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if body:
            request.wfile.write(data)
