"""The operational side of a worker process, beside the consumer.

:class:`Operations` owns what the manager starts around huey's consumer: the
database log sink and ``print`` capture, the resource guard and housekeeping
thread, the optional ``/metrics`` listener, and systemd notifications
(READY once workers run, STATUS lines, WATCHDOG pings only while the lifeline,
housekeeper and worker threads are visibly alive, STOPPING at shutdown). It
also applies a reloaded settings file (SIGHUP).

Reloaded on SIGHUP: ``[worker] log_level`` and ``[logging]``, ``[retention]``,
``[health]``, ``[tasks.NAME]`` overrides and the retry defaults of ``[worker]``,
``max_memory_mb`` and ``min_free_disk_mb``. Needing a restart: ``[runner]``,
``[database]``, ``[metrics]``, and ``[worker]`` ``max_concurrent_tasks``,
``queues``, ``queue_type``, ``shutdown_timeout``, ``lease_seconds``,
``heartbeat_interval``, ``poll_interval``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from runner.config import Settings
from runner.readmodel.health import HealthReport, check
from runner.store.job_storage import JobStorage
from runner.worker.guard import ResourceGuard
from runner.worker.housekeeper import Housekeeper
from runner.worker.http_server import MetricsServer, metrics_settings, parse_listen
from runner.worker.log_capture import install_output_capture, uninstall_output_capture
from runner.worker.log_config import configure_logging, logging_settings
from runner.worker.log_sink import LogSink
from runner.worker.systemd import SystemdNotifier

if TYPE_CHECKING:
    from runner.runner_huey import RunnerHuey
    from runner.scheduling.scheduler import Scheduler
    from runner.worker.lifeline import Lifeline


class ConsumerThreads(Protocol):
    """What the watchdog asks of the consumer (the manager's ``RunnerConsumer``)."""

    def workers_alive(self) -> bool: ...


logger = logging.getLogger(__name__)

_RESTART_ONLY = ("max_concurrent_tasks", "queues", "queue_type", "shutdown_timeout",
                 "lease_seconds", "heartbeat_interval", "poll_interval")


class Operations:
    """Started by the manager after recovery; stopped after the consumer."""

    def __init__(self, settings: Settings, huey: RunnerHuey, storage: JobStorage, owner: str,
                 *, on_memory_limit: Callable[[int], None],
                 notifier: SystemdNotifier | None = None) -> None:
        self.settings = settings
        self.huey = huey
        self.storage = storage
        self.owner = owner
        self.notifier = notifier or SystemdNotifier()
        section = logging_settings(settings)
        self.sink = LogSink(storage.db, section, worker=owner) if section.store else None
        self.capture = section.capture_output
        self.guard = ResourceGuard(storage, settings, on_memory_limit=on_memory_limit)
        self.housekeeper = Housekeeper(storage.db, settings, self.guard)
        self.server: MetricsServer | None = None
        self._ready = False
        self._last_ping = 0.0
        self._last_status: str | None = None

    def start(self) -> None:
        """Sink, capture, housekeeping and the listener; READY comes with the first tick."""
        if self.sink is not None:
            self.sink.start()
            logging.getLogger().addHandler(self.sink)
        if self.capture:
            install_output_capture()
        self.housekeeper.start()
        listen = metrics_settings(self.settings).listen
        if listen:
            host, port = parse_listen(listen, self.settings)
            self.server = MetricsServer(self.storage.db, host, port, self.health)
            self.server.start()
            logger.info("serving /metrics and /healthz on %s:%d", host, self.server.port)

    def health(self) -> HealthReport:
        """The health verdict, including this process's own hold reason."""
        return check(self.storage.db, self.settings, paused=self.guard.reason)

    def status_line(self) -> str:
        w = self.settings.worker
        held = self.guard.reason
        base = f"{w.max_concurrent_tasks} threads, {len(self.storage.inflight_ids())} running"
        return f"paused ({held}); {base}" if held else f"running: {base}"

    def tick(self, consumer: ConsumerThreads | None, lifeline: Lifeline | None,
             scheduler: Scheduler | None = None) -> None:
        """Main-thread pass: READY once, STATUS on change, WATCHDOG while alive."""
        status = self.status_line()
        if not self._ready:
            self._ready = True
            self._last_status = status
            self.notifier.ready(status)
            logger.info("ready: %s", status)
        elif status.split(";")[0] != (self._last_status or "").split(";")[0]:
            self._last_status = status
            self.notifier.status(status)
        interval = self.notifier.watchdog_interval
        now = time.monotonic()
        if interval and now - self._last_ping >= interval and self.alive(
                consumer, lifeline, scheduler):
            self._last_ping = now
            self.notifier.watchdog()

    def alive(self, consumer: ConsumerThreads | None, lifeline: Lifeline | None,
              scheduler: Scheduler | None = None) -> bool:
        """Lifeline beating (or the disk guard explaining why not), threads running."""
        if lifeline is None or not lifeline.is_alive() or not self.housekeeper.is_alive():
            return False
        if consumer is not None and not consumer.workers_alive():
            return False
        if scheduler is not None and not scheduler.is_alive():
            return False
        limit = max(10.0, 3 * self.settings.worker.heartbeat_interval)
        fresh = lifeline.last_beat is not None and time.time() - lifeline.last_beat < limit
        return fresh or self.guard.reason is not None

    def stopping(self) -> None:
        self.notifier.stopping("draining running jobs")

    def reload(self, new: Settings) -> None:
        """Apply settings already loaded and validated; logs what needs a restart."""
        old = self.settings
        restart = [f"[worker] {k}" for k in _RESTART_ONLY
                   if getattr(old.worker, k) != getattr(new.worker, k)]
        if old.runner != new.runner:
            restart.append("[runner]")
        if old.database != new.database:
            restart.append("[database]")
        if old.metrics != new.metrics:
            restart.append("[metrics]")
        # Keep what cannot change live, so the running process stays consistent.
        applied = replace(new, runner=old.runner, database=old.database, worker=replace(
            new.worker, **{k: getattr(old.worker, k) for k in _RESTART_ONLY}))
        section = logging_settings(applied)
        configure_logging(applied, extra_handlers=(self.sink,) if self.sink else ())
        if self.sink is not None:
            self.sink.configure(section)
        self.huey.update_settings(applied)
        self.housekeeper.reconfigure(applied)
        self.settings = applied
        logger.warning("settings reloaded from %s%s", new.path or "defaults",
                       f"; restart to apply {', '.join(restart)}" if restart else "")
        self.notifier.status(f"settings reloaded; {self.status_line()}")

    def stop(self) -> None:
        """Stop everything started, flushing stored logs last."""
        if self.server is not None:
            self.server.stop()
        self.housekeeper.stop()
        if self.capture:
            uninstall_output_capture()
        if self.sink is not None:
            logging.getLogger().removeHandler(self.sink)
            self.sink.stop()
        self.notifier.close()
