"""The worker process: ``python run.py`` builds a Manager and runs it.

The manager loads the task modules, recovers what dead workers left behind,
then runs huey's consumer (thread workers) with the lifeline beside it. SIGTERM
and SIGINT drain: claiming stops at once, running jobs get ``shutdown_timeout``
seconds, and whatever still runs after that is handed back to the queue.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from huey.consumer import Consumer

from runner.app import RunnerHuey
from runner.config import Settings
from runner.decorators import get_huey
from runner.errors import ConfigError, DatabaseCorrupt
from runner.event_settings import event_settings
from runner.lifeline import Lifeline
from runner.scheduler import Scheduler
from runner.storage import JobStorage
from runner.workers import make_worker_id, mark_stopped, recover_orphans, register

logger = logging.getLogger(__name__)


def import_task_modules(modules: Sequence[str]) -> None:
    """Import the configured task modules, naming the one that fails."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"[runner] imports: cannot import task module '{name}': "
                f"{type(exc).__name__}: {exc}") from exc


class RunnerConsumer(Consumer):
    """huey's consumer, told to stop claiming the moment a stop is asked for."""

    pending_signal: int | None = None

    def start(self) -> None:
        # huey installs its handlers after the workers start; a SIGTERM in that
        # window would kill the process with jobs in flight.
        self._set_signal_handlers()
        if self.pending_signal is not None:
            self._handle_signal(self.pending_signal, None)
        super().start()

    def stop(self, graceful: bool = False) -> None:
        jobs = self.huey.jobs
        self.stop_flag.set()
        if jobs is not None:
            jobs.pause_claims()
        super().stop(graceful)


class Manager:
    """One worker process: consumer, lifeline, recovery, clean shutdown."""

    def __init__(self, settings: Settings, *, queues: Sequence[str] = (),
                 huey: RunnerHuey | None = None, role: str = "all") -> None:
        self.settings = settings
        self.role = role  # "all", "scheduler" (--scheduler-only) or "workers" (--workers-only)
        self.scheduler: Scheduler | None = None
        self._stop_requested = threading.Event()
        self.queues = tuple(queues) or settings.worker.queues
        self.huey = huey or get_huey()
        self.owner = make_worker_id()
        self.consumer: RunnerConsumer | None = None
        self.lifeline: Lifeline | None = None

    def prepare(self) -> JobStorage:
        """Load tasks, open the database, register, recover orphans."""
        self.huey.configure(self.settings)
        event_settings(self.settings)  # [events] is validated here: a bad key exits 78
        import_task_modules(self.settings.runner.imports)
        scheduler = Scheduler(self.huey, self.settings)  # validates [schedules] in every role
        self.scheduler = scheduler if self.role != "workers" else None
        jobs = self.huey.jobs
        assert jobs is not None
        self.check_database(jobs)
        threads = 0 if self.role == "scheduler" else self.settings.worker.max_concurrent_tasks
        register(jobs.db, self.owner, concurrency=threads, queues=self.queues)
        recovery = recover_orphans(jobs.db, crash_limit=self.settings.worker.crash_limit,
                                   me=self.owner)
        if recovery.requeued or recovery.buried:
            logger.warning("start-up recovery: %d jobs of dead workers requeued, %d dead",
                           len(recovery.requeued), len(recovery.buried))
        return jobs

    def check_database(self, jobs: JobStorage) -> None:
        """A quick integrity check on small files (O(size)), at every start."""
        try:
            size = jobs.db.path.stat().st_size
        except OSError:
            size = 0
        if size > 256 * 1024 * 1024:
            return
        (result,) = jobs.db.query("PRAGMA quick_check(1)")[0]
        if result != "ok":
            raise DatabaseCorrupt(
                f"{jobs.db.path}: integrity check failed ({result}); stop every worker, move "
                f"the file aside and run `sqlite3 {jobs.db.path} .recover`")

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""
        early: list[int] = []

        def before_consumer(signum: int, frame: object) -> None:
            if self.consumer is not None:
                self.consumer._handle_signal(signum, frame)
            else:
                early.append(signum)
                self._stop_requested.set()

        previous = {sig: signal.signal(sig, before_consumer)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            jobs = self.prepare()
        except BaseException:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            raise
        w = self.settings.worker
        if self.role != "scheduler":
            jobs.start_consuming(self.owner, self.queues)
        self.lifeline = Lifeline(jobs, self.settings, self.owner)
        self.lifeline.start()
        if self.scheduler is not None:
            self.scheduler.start()
        if self.role == "scheduler":
            return self.run_scheduler_only(jobs)
        self.consumer = RunnerConsumer(
            self.huey, workers=w.max_concurrent_tasks, periodic=False, worker_type="thread",
            graceful_signal="TERM", shutdown_timeout=w.shutdown_timeout,
            check_worker_health=True, health_check_interval=5)
        if early:
            self.consumer.pending_signal = early[0]
        logger.info("worker %s started: %d threads, queues %s, database %s", self.owner,
                    w.max_concurrent_tasks, ",".join(self.queues) or "all", jobs.db.path)
        try:
            self.consumer.run()
        finally:
            self.shutdown(jobs)
        return 0

    def run_scheduler_only(self, jobs: JobStorage) -> int:
        """``--scheduler-only``: fire schedules, run no jobs, until SIGTERM/SIGINT."""
        logger.info("scheduler %s started (no workers), database %s", self.owner, jobs.db.path)
        try:
            while not self._stop_requested.wait(0.5):
                pass
        finally:
            self.shutdown(jobs)
        return 0

    def shutdown(self, jobs: JobStorage) -> None:
        """Stop the scheduler, hand back unstarted work, flush outcomes, deregister."""
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.lifeline is not None:
            self.lifeline.stop()
        try:
            handed = jobs.stop_consuming()
            if handed:
                logger.info("handed back %d claimed jobs that had not started", len(handed))
            mark_stopped(jobs.db, self.owner)
        except Exception:
            logger.exception("clean shutdown failed; leases expire and jobs are recovered")
        sys.stdout.flush()
