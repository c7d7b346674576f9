"""The worker process: ``python run.py`` builds a Manager and runs it.

The manager loads the task modules, recovers what dead workers left behind,
then runs huey's consumer (thread workers) with the lifeline and the
operations (:mod:`runner.worker.operations`: stored logs, resource guard, retention,
metrics listener, systemd notify) beside it. SIGTERM and SIGINT drain: claiming
stops at once, jobs claimed ahead of the threads go back to the queue at once,
running jobs get ``shutdown_timeout`` seconds, and whatever
still runs after that is handed back to the queue (failed by its timeout if it
is stuck past it). SIGHUP reloads settings. Exit code 86 means the worker
went over ``max_memory_mb`` and drained; 87 that more threads were stuck in
blocking calls than it runs (:mod:`runner.worker.stalls`).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from huey.consumer import Consumer, ConsumerStopped

from runner.config import Settings
from runner.errors import (
    EX_DATAERR,
    EX_MEMORY_LIMIT,
    EX_STUCK_THREADS,
    EX_TEMPFAIL,
    DatabaseCorrupt,
    DatabaseLocked,
    DatabaseRefused,
    DatabaseUnavailable,
    RunnerError,
)
from runner.events.delivery import unknown_handler_sections
from runner.readmodel.health import PAUSED_PREFIX, STALLED_PREFIX
from runner.registry import get_huey, import_task_modules
from runner.runner_huey import RunnerHuey
from runner.scheduling.scheduler import Scheduler
from runner.store.factory import database_of, is_url
from runner.store.job_storage import JobStorage
from runner.store.owners import make_worker_id
from runner.store.states import HandBack
from runner.task import TaskRegistry, unknown_task_sections
from runner.worker.cancels import CancelWatch
from runner.worker.clock_check import ClockCheck
from runner.worker.http_server import MetricsServer, bind_metrics
from runner.worker.lease_watch import LeaseWatch
from runner.worker.lifeline import Lifeline
from runner.worker.operations import Operations
from runner.worker.stalls import StallWatch

logger = logging.getLogger(__name__)

#: Seconds between tries of a database server not reachable at start-up: the first
#: pause, doubled after each try up to the longest.
START_RETRY_FIRST = 1.0
START_RETRY_LONGEST = 30.0


class RunnerConsumer(Consumer):
    """huey's consumer with our signals and a main-loop tick.

    * A stop request stops claiming at once.
    * SIGHUP reloads settings (``on_reload``) instead of huey's drain-and-``execl``.
    * ``on_tick`` runs in the main thread every loop pass (about 10 per second):
      systemd notifications and watchdog pings live there.
    * :meth:`request_stop` drains from any thread, as SIGTERM would.
    """

    def __init__(self, huey: RunnerHuey, *, on_tick: Callable[[], None] | None = None,
                 on_reload: Callable[[], None] | None = None,
                 on_stop: Callable[[], None] | None = None, **options: Any) -> None:
        self.on_tick = on_tick
        self.on_reload = on_reload
        self.on_stop = on_stop
        self._reload_pending = False
        self._stop_requested = False
        self._replace: list[threading.Thread] = []
        self._replace_lock = threading.Lock()
        self._spawned = 0
        super().__init__(huey, **options)
        self._signal_actions.pop(signal.SIGHUP, None)
        # huey treats the signal that is not its graceful one as "stop now"; Ctrl-C
        # (SIGINT) drains here like SIGTERM (a second one of either stops at once).
        self._signal_actions[signal.SIGINT] = (False, True)

    def _set_signal_handlers(self) -> None:
        super()._set_signal_handlers()
        signal.signal(signal.SIGHUP, self._handle_reload_signal)

    def _handle_reload_signal(self, signum: int, frame: object) -> None:
        self._reload_pending = True

    def request_stop(self) -> None:
        """Drain and stop, as on SIGTERM (thread-safe)."""
        self._stop_requested = True

    def replace_worker(self, thread: threading.Thread) -> None:
        """Start a new worker thread in place of one written off (thread-safe)."""
        with self._replace_lock:
            self._replace.append(thread)

    def _replace_written_off(self) -> None:
        with self._replace_lock:
            gone, self._replace = self._replace, []
        for thread in gone:
            for i, (_, t) in enumerate(self.worker_threads):
                if t is thread and not self.stop_flag.is_set():
                    self._spawned += 1
                    worker = self._create_worker()
                    replacement = self._create_process(
                        worker, f"Worker-{self.workers + self._spawned}")
                    replacement.start()
                    self.worker_threads[i] = (worker, replacement)
                    logger.warning("thread %s written off; %s takes its place", thread.name,
                                   replacement.name)

    def loop(self, health_check_ts: float | None = None) -> float | None:
        if self._reload_pending:
            self._reload_pending = False
            self._call(self.on_reload, "settings reload")
        if self._stop_requested and self._signum is None:
            self._stop_requested = False
            self.stop(graceful=True)
            raise ConsumerStopped
        self._replace_written_off()
        self._call(self.on_tick, "main-loop tick")
        return super().loop(health_check_ts)

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
        running = len(self.huey._tasks_in_flight)
        if graceful:
            logger.info("stopping: draining %d jobs (shutdown_timeout %gs)", running,
                        self.shutdown_timeout)
        else:
            logger.info("stopping now: interrupting %d jobs", running)
        if jobs is not None:
            self._hand_back_unstarted(jobs)
        self._call(self.on_stop, "stop notification")
        super().stop(graceful)

    def _hand_back_unstarted(self, jobs: JobStorage) -> None:
        """The jobs claimed ahead go back to the queue before the drain waits for the running
        ones: other workers may have threads idle for them now."""
        try:
            handed = jobs.hand_back_unstarted()
        except Exception:
            logger.exception("could not hand back the jobs claimed ahead of the threads; "
                             "trying again once the running jobs end")
            return
        if handed:
            logger.info("handed back %d claimed jobs that had not started", len(handed))

    def _call(self, hook: Callable[[], None] | None, what: str) -> None:
        if hook is None:
            return
        try:
            hook()
        except Exception:
            logger.exception("%s failed", what)

    def workers_alive(self) -> bool:
        """True while every worker thread runs."""
        return all(self.environment.is_alive(t) for _, t in self.worker_threads)


def handed_back_message(done: Mapping[HandBack, Sequence[str]]) -> str:
    """The shutdown line for the jobs still running: ``handed back 2 jobs still running;
    cancelled 1 as asked`` (one whose cancel was asked ends cancelled, not handed back)."""
    handed, cancelled = len(done.get(HandBack.HANDED_BACK, ())), len(
        done.get(HandBack.CANCELLED, ()))
    if not cancelled:
        return f"handed back {handed} jobs still running"
    if not handed:
        return f"cancelled {cancelled} jobs still running, as asked"
    return f"handed back {handed} jobs still running; cancelled {cancelled} as asked"


def warn_unknown_task_sections(settings: Settings, registry: TaskRegistry) -> None:
    """Log each ``[tasks.NAME]`` (and ``[events.handlers.NAME]``) naming no task (handler)
    this worker loaded: workers of one database may import different modules, so it is
    not an error here (``check`` refuses it)."""
    for name in unknown_task_sections(settings, registry):
        logger.warning("%s: [tasks.%s] names no task the imported modules register; it "
                       "applies to no job this worker runs", settings.origin_of("tasks", name),
                       name)
    for name in unknown_handler_sections(settings):
        logger.warning("%s: [events.handlers.%s] names no event handler the imported modules "
                       "register; it applies to no job this worker runs",
                       settings.path or "settings", name)


class Manager:
    """One worker process: consumer, lifeline, recovery, clean shutdown."""

    def __init__(self, settings: Settings, *, queues: Sequence[str] = (),
                 huey: RunnerHuey | None = None,
                 loader: Callable[[], Settings] | None = None, role: str = "all",
                 early_signals: list[int] | None = None) -> None:
        self.settings = settings
        self.role = role  # "all", "scheduler" (--scheduler-only) or "workers" (--workers-only)
        self.scheduler: Scheduler | None = None
        self._stop_requested = threading.Event()
        self.queues = tuple(queues) or settings.worker.queues
        self.huey = huey or get_huey()
        self.owner = make_worker_id(node=settings.runner.node_name)
        self.loader = loader
        self.consumer: RunnerConsumer | None = None
        self.lifeline: Lifeline | None = None
        self.ops: Operations | None = None
        self.stalls: StallWatch | None = None
        self.cancels: CancelWatch | None = None
        self.clock: ClockCheck | None = None
        #: The ``[metrics] listen`` listener, bound by :meth:`prepare` (handed to the operations).
        self.listener: MetricsServer | None = None
        self.exit_code = 0
        self._corrupt_lock = threading.Lock()
        #: Stop signals received before :meth:`run` took over the handlers (still appended to).
        self.early_signals = early_signals if early_signals is not None else []

    def prepare(self) -> JobStorage | None:
        """Load tasks, bind the metrics listener, open the database, register, recover
        orphans; None when a stop signal came while waiting for the database (see
        :meth:`open_jobs`)."""
        self.huey.configure(self.settings)
        import_task_modules(self.settings.runner.imports)
        warn_unknown_task_sections(self.settings, self.huey.task_registry)
        scheduler = Scheduler(self.huey, self.settings)  # validates [schedules] in every role
        self.scheduler = scheduler if self.role != "workers" else None
        # Before the database: a worker that cannot have its address stops having made no
        # database and left no worker row behind (one that would read as a dead worker).
        self.listener = bind_metrics(self.settings)
        jobs = self.open_jobs()
        if jobs is None:
            return None
        reclaim = jobs.store.enable_space_reclaim(me=self.owner)
        if reclaim:
            logger.warning("%s: %s", jobs.store.location, reclaim)
        threads = 0 if self.role == "scheduler" else self.settings.worker.max_concurrent_tasks
        # Before the first lease is judged or written: see runner.clock_drift.
        self.clock = clock = ClockCheck(jobs, self.settings, self.owner)
        clock.measure()
        self._register = lambda: jobs.store.register(
            self.owner, concurrency=threads, queues=self.queues, clock_offset=clock.offset)
        self._register()
        jobs.store.seed_pauses("queue", self.settings.paused_queues(), now=time.time())
        recovery = jobs.store.recover_orphans(crash_limit=self.settings.worker.crash_limit,
                                              me=self.owner,
                                              now=clock.judging_time(time.time()))
        if recovery.requeued or recovery.buried:
            logger.warning("start-up recovery: %d jobs of dead workers requeued, %d dead",
                           len(recovery.requeued), len(recovery.buried))
        self.huey.fallbacks_of_buried(recovery.buried)
        return jobs

    def open_jobs(self) -> JobStorage | None:
        """The jobs storage, its integrity checked; a database server not reachable yet
        is waited for.

        A server that is down at start-up (a host booting before its database, a
        failover) is tried again with a growing pause, each failure logged, until it
        answers or a stop signal arrives (then None). A SQLite file that cannot be
        opened, or a server that answers but refuses (:class:`DatabaseRefused`), is not
        waited for: it raises at once.
        """
        delay = START_RETRY_FIRST
        while True:
            try:
                jobs = self.huey.jobs
                assert jobs is not None
                # A server's store may not connect until its first use (Redis): this check
                # is that use, so a server that is away is waited for, not called damaged.
                self.check_database(jobs)
                return jobs
            except DatabaseUnavailable as exc:
                # A server named by [runner] redis_url leaves database its default path.
                server = is_url(database_of(self.settings))
                if not server or isinstance(exc, DatabaseRefused):
                    raise
                logger.warning("database not reachable at start-up: %s; trying again in "
                               "%.0fs", exc, delay)
            if self._stop_requested.wait(delay):
                logger.info("stopping before the database was reached")
                return None
            delay = min(delay * 2, START_RETRY_LONGEST)

    def check_database(self, jobs: JobStorage) -> None:
        """A quick integrity check on small databases (O(size)), at every start."""
        problem = jobs.store.integrity_problem(full_check_below=256 * 1024 * 1024)
        if problem is not None:
            raise DatabaseCorrupt(
                f"{jobs.store.location}: integrity check failed ({problem}); stop every "
                "worker, move the data aside and restore a backup")

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or the memory limit); returns the process exit code."""
        early = self.early_signals

        def before_consumer(signum: int, frame: object) -> None:
            if self.consumer is not None:
                self.consumer._handle_signal(signum, frame)
            else:
                early.append(signum)
                self._stop_requested.set()

        previous = {sig: signal.signal(sig, before_consumer)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        if early:
            self._stop_requested.set()
        try:
            prepared = self.prepare()
        except BaseException:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.release_listener()
            raise
        if prepared is None:  # stopped while waiting for the database
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.release_listener()
            return self.exit_code
        jobs = prepared
        jobs.on_corrupt = self._corrupt
        w = self.settings.worker
        self.ops = ops = Operations(
            self.settings, self.huey, jobs, self.owner, on_memory_limit=self._memory_limit,
            threads=0 if self.role == "scheduler" else w.max_concurrent_tasks,
            server=self.listener)
        if self.role != "scheduler":
            jobs.start_consuming(self.owner, self.queues)
        if self.role != "scheduler":
            self.stalls = StallWatch(self.huey, jobs, self.settings,
                                     on_written_off=self._thread_written_off)
            self.cancels = CancelWatch(self.huey, jobs)
            self.cancels.start()
        self.lifeline = Lifeline(jobs, self.settings, self.owner, status=self._status,
                                 stalls=self.stalls, clock=self.clock,
                                 leases=LeaseWatch(jobs.store, self.owner,
                                                   self.huey.running_attempts),
                                 on_buried=self.huey.fallbacks_of_buried,
                                 register=self._register)
        if self.stalls is not None:
            self.huey.on_deadline = self.lifeline.deadline_set
        self.lifeline.start()
        ops.start()
        if self.scheduler is not None:
            self.scheduler.start()
        if self.role == "scheduler":
            return self.run_scheduler_only(jobs)
        self.consumer = consumer = RunnerConsumer(
            self.huey, workers=w.max_concurrent_tasks, periodic=False, worker_type="thread",
            graceful_signal="TERM", shutdown_timeout=w.shutdown_timeout,
            check_worker_health=True, health_check_interval=5,
            on_tick=lambda: ops.tick(consumer, self.lifeline, self.scheduler),
            on_reload=self.reload,
            on_stop=ops.stopping)
        if early:
            self.consumer.pending_signal = early[0]
        logger.info("worker %s started: %d threads, queues %s, database %s", self.owner,
                    w.max_concurrent_tasks, ",".join(self.queues) or "all", jobs.store.location)
        try:
            self.consumer.run()
        finally:
            self.shutdown(jobs)
        return self.exit_code

    def release_listener(self) -> None:
        """Let the metrics address go when the worker stops before its operations start."""
        if self.listener is not None:
            self.listener.stop()
            self.listener = None

    def run_scheduler_only(self, jobs: JobStorage) -> int:
        """``--scheduler-only``: fire schedules, run no jobs, until SIGTERM/SIGINT."""
        logger.info("scheduler %s started (no workers), database %s", self.owner,
                    jobs.store.location)
        try:
            while not self._stop_requested.wait(0.1):
                if self.ops is not None:
                    self.ops.tick(None, self.lifeline, self.scheduler)
            logger.info("stopping: draining 0 jobs (scheduler only)")
        finally:
            self.shutdown(jobs)
        return self.exit_code

    def reload(self) -> None:
        """SIGHUP: load the settings file again; a bad file is logged and ignored."""
        if self.loader is None or self.ops is None:
            logger.warning("SIGHUP ignored: no settings file to reload")
            return
        # systemd's notify-reload: `systemctl reload` returns once READY=1 says it is applied.
        self.ops.notifier.reloading()
        try:
            new = self.loader()  # every section is validated at load
            if self.scheduler is not None \
                    and new.worker.max_payload_mb != self.settings.worker.max_payload_mb:
                # A schedule's runs are written unbounded (see new_run_job): a bound lowered
                # under one is refused here, as it would be at start.
                self.scheduler.check_runs(new.worker.max_payload_mb)
        except RunnerError as exc:
            logger.error("SIGHUP: new settings rejected, keeping the old ones: %s", exc)
            self.ops.notifier.ready(f"settings reload rejected: {exc}"[:200])
            return
        try:
            self.ops.reload(new)
            self.settings = self.ops.settings
        finally:
            self.ops.notifier.ready()

    def _status(self) -> str:
        """The status each heartbeat writes: paused (guard), stalled, or running."""
        base = self.ops.guard.status() if self.ops is not None else "running"
        stalled = self.stalls.status() if self.stalls is not None else None
        if stalled is None or base.startswith(PAUSED_PREFIX):
            return base
        return f"{STALLED_PREFIX} {stalled}"

    def _thread_written_off(self, thread: threading.Thread) -> None:
        if self.consumer is not None:
            self.consumer.replace_worker(thread)
        threads = self.settings.worker.max_concurrent_tasks
        if self.stalls is not None and self.stalls.blocked_threads() > threads \
                and self.exit_code == 0:
            logger.error("%d threads are blocked in jobs written off, more than the %d the "
                         "worker runs: draining and exiting (code %d) for a restart",
                         self.stalls.blocked_threads(), threads, EX_STUCK_THREADS)
            self.exit_code = EX_STUCK_THREADS
            self._stop_requested.set()
            if self.consumer is not None:
                self.consumer.request_stop()

    def _corrupt(self, exc: DatabaseCorrupt) -> None:
        """The data was found damaged while running: stop, as at start (exit 65), rather
        than write on into it; a supervisor does not restart on that code."""
        with self._corrupt_lock:
            if self.exit_code == EX_DATAERR:
                return
            self.exit_code = EX_DATAERR
        logger.error("%s; claiming stopped, draining and exiting (code %d)", exc, EX_DATAERR)
        self._stop_requested.set()
        if self.consumer is not None:
            self.consumer.request_stop()

    def _memory_limit(self, rss_bytes: int) -> None:
        self.exit_code = EX_MEMORY_LIMIT
        self._stop_requested.set()
        if self.consumer is not None:
            self.consumer.request_stop()

    def shutdown(self, jobs: JobStorage) -> None:
        """Stop the scheduler, hand back running and unstarted work, flush outcomes,
        deregister."""
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.lifeline is not None:
            self.huey.on_deadline = None
            self.lifeline.stop()
        if self.cancels is not None:
            self.cancels.stop()
        try:
            interrupted = self.huey.hand_back_running()
            if any(interrupted.values()):
                logger.info("%s", handed_back_message(interrupted))
            handed = jobs.stop_consuming()
            if handed:
                logger.info("handed back %d claimed jobs that had not started", len(handed))
            jobs.store.mark_stopped(self.owner)
        except DatabaseLocked as exc:
            # Nothing more can be written now; the exit code says the drain was not clean.
            logger.error("clean shutdown failed: %s; leases expire and the jobs still held "
                         "are recovered at the next start", exc)
            if self.exit_code == 0:
                self.exit_code = EX_TEMPFAIL
        except Exception:
            logger.exception("clean shutdown failed; leases expire and jobs are recovered")
        logger.info("stopped")  # before the stored-log sink is flushed and detached
        if self.ops is not None:
            self.ops.stop()
        sys.stdout.flush()
