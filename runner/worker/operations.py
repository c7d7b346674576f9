"""The operational side of a worker process, beside the consumer.

:class:`Operations` owns what the manager starts around huey's consumer: the
database log sink and ``print`` capture, the resource guard and housekeeping
thread, the optional ``/metrics`` listener (and its exporter election), and
systemd notifications: READY once workers run, STATUS lines, STOPPING at
shutdown, and WATCHDOG pings while the process itself is alive: the main loop
ticks, and the lifeline, housekeeper and worker threads run and make progress.
A database another process keeps locked does not stop the pings (restarting
would not help); it shows in STATUS and in health instead. It also applies a
reloaded settings file (SIGHUP).

Reloaded on SIGHUP: ``[worker] log_level`` and ``[logging]``, ``[retention]``,
``[health]``, ``[tasks.NAME]`` overrides, ``[queues.NAME]`` (``paused`` as at start: a
queue whose state is recorded keeps it) and the retry defaults of ``[worker]``,
``max_memory_mb``, ``min_free_disk_mb`` and ``max_payload_mb``. Needing a restart: ``[runner]``,
``[database]``, ``[metrics]``, and ``[worker]`` ``max_concurrent_tasks``,
``queues``, ``queue_type``, ``shutdown_timeout``, ``lease_seconds``,
``heartbeat_interval``, ``poll_interval``, ``max_clock_drift``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from runner.config import Settings
from runner.errors import DatabaseError
from runner.readmodel.health import HealthReport, check, heartbeat_limit
from runner.readmodel.prometheus import render_database, render_worker
from runner.readmodel.scrape import (
    WorkerSnapshot,
    build_info,
    host_name,
    read_database,
    read_process,
)
from runner.store.job_storage import JobStorage
from runner.worker.exporter import ExporterElection
from runner.worker.guard import ResourceGuard
from runner.worker.housekeeper import Housekeeper
from runner.worker.http_server import MetricsServer, metrics_settings
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
                 "lease_seconds", "heartbeat_interval", "poll_interval", "max_clock_drift")


class Operations:
    """Started by the manager after recovery; stopped after the consumer."""

    def __init__(self, settings: Settings, huey: RunnerHuey, storage: JobStorage, owner: str,
                 *, on_memory_limit: Callable[[int], None],
                 notifier: SystemdNotifier | None = None, threads: int | None = None,
                 server: MetricsServer | None = None) -> None:
        """``server`` is the ``[metrics] listen`` listener, bound already (the manager binds
        it before it opens the database: :func:`runner.worker.http_server.bind_metrics`);
        ``start()`` has it answer, ``stop()`` lets it go."""
        self.settings = settings
        self.huey = huey
        self.storage = storage
        self.owner = owner
        self.notifier = notifier or SystemdNotifier()
        section = logging_settings(settings)
        self.sink = LogSink(storage.store, section, worker=owner) if section.store else None
        self.capture = section.capture_output
        self.guard = ResourceGuard(storage, settings, on_memory_limit=on_memory_limit)
        self.housekeeper = Housekeeper(storage.store, settings, self.guard)
        self.server = server
        self.election: ExporterElection | None = None
        self.threads = settings.worker.max_concurrent_tasks if threads is None else threads
        self.lifeline: Lifeline | None = None
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
        server = self.server
        if server is not None:
            if metrics_settings(self.settings).database == "elected":
                self.election = ExporterElection(self.storage.store, self.owner,
                                                 self.settings.worker.heartbeat_interval,
                                                 clock=self.storage.clock.now)
                self.election.start()
            server.start(self.storage.store, self.health, self.metrics_text)
            logger.info("serving /metrics and /healthz on %s:%d", server.host, server.port)

    def health(self) -> HealthReport:
        """The health verdict, including this process's own hold reason and database wait."""
        stuck = self.database_stuck()
        if stuck:
            return HealthReport(False, f"database: {stuck}")
        return check(self.storage.store, self.settings, paused=self.guard.reason)

    def database_stuck(self, now: float | None = None) -> str | None:
        """Why this worker's heartbeats are not being written, or None while they are."""
        lifeline = self.lifeline
        if lifeline is None:
            return None
        last = lifeline.started_at if lifeline.last_beat is None else lifeline.last_beat
        waited = (time.time() if now is None else now) - last
        if waited < self.heartbeat_limit() or self.guard.reason is not None:
            return None
        since = time.strftime("%H:%M:%S", time.localtime(last))
        return (f"no heartbeat written since {since} ({waited:.0f}s; another process may hold "
                "the write lock)")

    def heartbeat_limit(self) -> float:
        """Seconds after which a heartbeat is stale (``[health] heartbeat_max_age``)."""
        return heartbeat_limit(self.settings, self.settings.health)

    def counts(self) -> tuple[int, int]:
        """(running, prefetched) jobs of this process."""
        prefetched = self.storage.prefetched_count()
        return max(0, len(self.storage.inflight_ids()) - prefetched), prefetched

    def status_line(self) -> str:
        held = self.guard.reason
        running, prefetched = self.counts()
        base = f"{self.threads} threads, {running} running, {prefetched} prefetched"
        stuck = self.database_stuck()
        if stuck:
            return f"database stuck; {stuck}; {base}"
        return f"paused ({held}); {base}" if held else f"running: {base}"

    def exports_database(self) -> bool:
        """True when this worker's ``/metrics`` carries the database-wide series."""
        mode = metrics_settings(self.settings).database
        if mode == "elected":
            return self.election is not None and self.election.elected
        return mode == "always"

    def worker_snapshot(self) -> WorkerSnapshot:
        running, prefetched = self.counts()
        lifeline = self.lifeline
        cpu = lifeline.last_cpu_percent if lifeline is not None else None
        return WorkerSnapshot(
            host=host_name(), name=metrics_settings(self.settings).name, threads=self.threads,
            running=running, prefetched=prefetched,
            last_heartbeat=lifeline.last_beat if lifeline is not None else None,
            cpu_ratio=None if cpu is None else cpu / 100.0,
            paused=self.guard.reason is not None, exporter=self.exports_database(),
            process=read_process())

    def metrics_text(self) -> str:
        """This worker's ``/metrics``: its own series, plus the database's when elected."""
        text = render_worker(self.worker_snapshot(), build_info())
        if self.exports_database():
            text += render_database(read_database(self.storage.store,
                                                  heartbeat_limit=self.heartbeat_limit()))
        return text

    def tick(self, consumer: ConsumerThreads | None, lifeline: Lifeline | None,
             scheduler: Scheduler | None = None) -> None:
        """Main-thread pass: READY once, STATUS on change, WATCHDOG while alive."""
        self.lifeline = lifeline
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
        """Threads running, and the lifeline's loop making progress.

        The caller is the main loop, so it ticks. The lifeline may wait on the
        database, but never longer than its write deadlines allow: past that
        bound it is wedged, whatever the database does.
        """
        if lifeline is None or not lifeline.is_alive() or not self.housekeeper.is_alive():
            return False
        if consumer is not None and not consumer.workers_alive():
            return False
        if scheduler is not None and not scheduler.is_alive():
            return False
        return lifeline.progress_age() < self.progress_limit()

    def progress_limit(self) -> float:
        """Seconds a lifeline pass may take: two writes that each wait out their deadline."""
        s = self.settings
        return s.worker.heartbeat_interval + 2 * (s.database.write_deadline
                                                  + s.database.busy_timeout) + 10.0

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
        jobs = self.huey.jobs
        if old.tasks != applied.tasks and jobs is not None:
            # A task's limit may be higher now, or gone: jobs parked under the old one
            # would wait for room they already have.
            jobs.store.release_parked()
            jobs.wake()  # idle threads sleep until told; held-back jobs may start now
        if jobs is not None:
            self._seed_queue_pauses(jobs, applied)
            if old.queues != applied.queues:
                jobs.wake()  # a changed rate or concurrency may let held-back jobs start now
        self.housekeeper.reconfigure(applied)
        self.settings = applied
        logger.warning("settings reloaded from %s%s", new.path or "defaults",
                       f"; restart to apply {', '.join(restart)}" if restart else "")
        self.notifier.status(f"settings reloaded; {self.status_line()}")

    @staticmethod
    def _seed_queue_pauses(jobs: JobStorage, settings: Settings) -> None:
        """As at start, pause the queues the file pauses whose state is not recorded yet:
        a pause or resume made since (``queues pause``/``resume``) stays as it is."""
        try:
            jobs.store.seed_pauses("queue", settings.paused_queues(), now=time.time())
        except DatabaseError as exc:
            logger.error("SIGHUP: [queues.NAME] paused not applied: %s; send SIGHUP again, "
                         "or pause the queue with `python -m runner queues pause NAME`", exc)

    def stop(self) -> None:
        """Stop everything started, flushing stored logs last."""
        if self.server is not None:
            self.server.stop()
        if self.election is not None:
            self.election.stop()
        self.housekeeper.stop()
        if self.capture:
            uninstall_output_capture()
        if self.sink is not None:
            logging.getLogger().removeHandler(self.sink)
            self.sink.stop()
        self.notifier.close()
