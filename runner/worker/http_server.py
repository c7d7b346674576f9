"""The worker's optional HTTP listener: ``/metrics`` (Prometheus) and ``/healthz``.

Off unless ``[metrics] listen = "127.0.0.1:9464"`` is set. It binds loopback
addresses only, unless ``allow_remote = true`` says otherwise: the metrics
name tasks and queues, and there is no authentication. GET and HEAD are
answered; scrapes run one at a time, so concurrent scrapers cannot pile up
memory or database reads in the worker. The worker binds the address before it
opens its database (:func:`bind_metrics`); ``check`` probes it without taking it
(:func:`probe_listen`).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from runner.config import Settings
from runner.errors import AddressInUse, ConfigError, RunnerError
from runner.readmodel.health import HealthReport
from runner.readmodel.prometheus import CONTENT_TYPE
from runner.service_sections import MetricsSection, split_listen
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


def bind_metrics(settings: Settings) -> MetricsServer | None:
    """The listener of ``[metrics] listen``, bound now; None when the setting is off.

    Raises:
        AddressInUse: another process listens there (exit 75: it may let go).
        ConfigError: the address cannot be this host's (exit 78: a restart cannot help).
    """
    listen = metrics_settings(settings).listen
    if not listen:
        return None
    host, port = parse_listen(listen, settings)
    try:
        return MetricsServer(host, port)
    except OSError as exc:
        raise _bind_error(settings, exc) from None


def probe_listen(settings: Settings) -> str | None:
    """What ``check`` says of ``[metrics] listen``: a note when another process listens
    there now (a running worker's own exporter, most often), else None.

    The probe binds with SO_REUSEADDR, as the worker's server does, and never listens:
    Linux lets a worker starting meanwhile bind and listen beside it, so a check never
    takes the address from a worker.

    Raises:
        ConfigError: the address cannot be this host's (the worker would exit 78).
    """
    listen = metrics_settings(settings).listen
    if not listen:
        return None
    host, port = parse_listen(listen, settings)
    try:
        with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        error = _bind_error(settings, exc)
        if not isinstance(error, AddressInUse):
            raise error from None
        return (f"{settings.path or 'settings'}: [metrics] listen {listen} is in use now "
                "(a running worker's exporter?); a worker started while it is exits 75")
    return None


def _bind_error(settings: Settings, exc: OSError) -> RunnerError:
    """The error of a bind of ``[metrics] listen`` that failed with ``exc``."""
    listen = metrics_settings(settings).listen
    where = f"{settings.path or 'settings'}: [metrics] listen {listen}"
    if exc.errno == errno.EADDRINUSE:
        return AddressInUse(f"{where}: address already in use (another worker's exporter?); "
                            "one still draining lets it go when it stops, else give each "
                            "worker of this host an address of its own")
    host = split_listen(listen)[0]
    if exc.errno == errno.EADDRNOTAVAIL:
        why = "not an address of this host (cannot assign requested address)"
    elif exc.errno == errno.EACCES:
        why = "permission denied (a port below 1024 needs privileges)"
    elif isinstance(exc, socket.gaierror):
        why = f"cannot resolve {host!r} ({exc.strerror})"
    else:
        why = (exc.strerror or str(exc)).lower()
    return ConfigError(f"{where}: {why}")


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class MetricsServer:
    """A threading HTTP server: bound and listening once made, answering from ``start()``.

    Made before the worker opens its database, so an address it cannot have stops it
    before it writes anything; connections made meanwhile wait until ``start()``.
    """

    def __init__(self, host: str, port: int) -> None:
        """Raises OSError: the address cannot be bound (see :func:`bind_metrics`)."""
        self.host = host
        self.store: Store | None = None
        self.health: Callable[[], HealthReport] | None = None
        self.metrics: Callable[[], str] | None = None
        self._scrape_lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.handle(self)

            def do_HEAD(self) -> None:  # noqa: N802
                server.handle(self, body=False)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                logger.debug("%s " + format, self.address_string(), *args)

        server_class = _IPv6Server if _family(host) == socket.AF_INET6 else ThreadingHTTPServer
        self.httpd = server_class((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self.httpd.server_address[1]

    def start(self, store: Store, health: Callable[[], HealthReport],
              metrics: Callable[[], str]) -> None:
        """Answer ``/healthz`` with ``health()`` and ``/metrics`` with ``metrics()``."""
        self.store, self.health, self.metrics = store, health, metrics
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="runner-metrics",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and let the address go (whether or not it was started)."""
        if self._thread is not None:
            # shutdown() waits for serve_forever() to end: it would wait forever unstarted.
            self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def handle(self, request: BaseHTTPRequestHandler, *, body: bool = True) -> None:
        path = request.path.split("?", 1)[0]
        assert self.store is not None and self.health is not None and self.metrics is not None
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
