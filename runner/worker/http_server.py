"""The worker's optional HTTP listener: ``/metrics`` (Prometheus) and ``/healthz``.

Off unless ``[metrics] listen = "127.0.0.1:9464"`` is set. It binds loopback
addresses only, unless ``allow_remote = true`` says otherwise: the metrics
name tasks and queues, and there is no authentication. GET and HEAD are
answered; scrapes run one at a time, so concurrent scrapers cannot pile up
memory or database reads in the worker.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from runner.config import Settings
from runner.errors import ConfigError
from runner.readmodel.health import HealthReport
from runner.readmodel.prometheus import CONTENT_TYPE
from runner.sections import MetricsSection, split_listen
from runner.store.backend import Store

logger = logging.getLogger(__name__)


def metrics_settings(settings: Settings) -> MetricsSection:
    """The ``[metrics]`` section (typed and validated when the settings were loaded)."""
    return settings.metrics


def parse_listen(text: str, settings: Settings) -> tuple[str, int]:
    """``"host:port"`` (``[::1]:9464`` for IPv6) as (host, port)."""
    try:
        return split_listen(text)
    except ValueError as exc:
        raise ConfigError(f"{settings.path or 'settings'}: [metrics] listen {exc}") from None


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class MetricsServer:
    """``start()``/``stop()`` around a threading HTTP server."""

    def __init__(self, store: Store, host: str, port: int,
                 health: Callable[[], HealthReport], metrics: Callable[[], str]) -> None:
        self.store = store
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
            self.store.close()
        data = text.encode()
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if body:
            request.wfile.write(data)
