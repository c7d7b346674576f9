"""The scheduler thread: fire due cron slots exactly once, then sleep until the next one.

There is no fixed tick. The thread sleeps until the earliest ``next_fire_at`` of
an active schedule, and between those wake-ups it looks at SQLite's
``data_version`` every ``check_interval`` seconds, so a pause, resume or a newly
synced schedule from another process is seen at once. :meth:`Scheduler.tick`
takes ``now``, so tests drive it with an injected clock.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from runner.config import Settings
from runner.errors import InvalidArgument, InvalidSchedule, SerializationError
from runner.pass_failure import log_pass_failure
from runner.payload_size import over_bound, payload_limit
from runner.runner_huey import RunnerHuey
from runner.scheduling import cron_times, misfire
from runner.scheduling.definitions import ScheduleDef, effective_schedules
from runner.serializers import make_serializer
from runner.store.backend import Store
from runner.store.job_rows import NewJob
from runner.store.schedule_rows import FirePlan, SyncItem

logger = logging.getLogger(__name__)

#: How long fired-slot records are kept.
RUN_RETENTION = 7 * 86400.0
_PRUNE_EVERY = 3600.0
_RETRY_AFTER = 1.0
_AHEAD = 5.0  # plan slots this many seconds before they are due
_COUNT_CAP = 1000  # missed slots counted beyond what the misfire policy needs
#: How often a running scheduler looks for its own schedules marked orphaned by another
#: process's start (one that defines other schedules): the slots it misses meanwhile
#: go by their misfire policy.
_ADOPT_EVERY = 2.0


def new_run_job(huey: RunnerHuey, definition: ScheduleDef, *, run_at: float) -> NewJob:
    """The job row of one run of a schedule (the task's options resolved as usual)."""
    assert definition.wrapper is not None
    task = definition.wrapper.s(*definition.args, **definition.kwargs)
    task.schedule_name = definition.name
    # Not held to [worker] max_payload_mb here: a run refused at its firing would be a
    # run lost, with no caller to tell. The scheduler refuses the schedule when it starts
    # instead, and a reload that lowers the bound under one (see Scheduler.check_runs).
    return replace(huey.new_job(task, bounded=False), run_at=run_at)


def to_datetime(ts: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


def sync_item(definition: ScheduleDef, now: float) -> SyncItem:
    """The row written for a definition at ``now``."""
    assert definition.wrapper is not None
    upcoming = cron_times.next_fire(definition.spec, to_datetime(now)).timestamp()
    return SyncItem(definition.name, definition.wrapper.task_name, definition.cron,
                          definition.tz, definition.misfire, definition.overlap,
                          definition.enabled, upcoming)


class Scheduler:
    """Fires the schedules of this process's registry; any number may share a database.

    Args:
        huey: the runner whose database and task registry are used.
        settings: for ``[schedules.NAME]`` overrides and the default time zone.
        definitions: schedules to serve (default: every ``@scheduled_task``).
        clock: wall-clock source (epoch seconds); tests inject their own. By default the
            database server's clock (see :mod:`runner.store.server_clock`): a slot's fire
            time is one row every host's scheduler judges, so one whose clock is off
            fires neither early nor late.
        check_interval: longest sleep between looks for changes by other processes.

    Raises:
        ConfigError, InvalidSchedule: bad ``[schedules]`` settings (at construction).
    """

    def __init__(self, huey: RunnerHuey, settings: Settings, *,
                 definitions: Iterable[ScheduleDef] | None = None,
                 clock: Callable[[], float] | None = None,
                 check_interval: float = 0.25) -> None:
        self.huey = huey
        self.settings = settings
        self.schedules = {d.name: d for d in effective_schedules(settings, definitions)}
        _check_arguments_serialize(self.schedules.values(), settings.runner.serializer)
        self.check_runs(settings.worker.max_payload_mb)
        self.clock = clock if clock is not None else self._server_now
        self.check_interval = check_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unknown: set[str] = set()
        self._pruned_at = 0.0
        self._adopted_at = 0.0
        self._ticked_at = 0.0
        # Plans made while sleeping: name -> (slot, the slot after it, its job row).
        self._ready: dict[str, tuple[float, datetime, NewJob]] = {}
        self._prepared_for: float | None = None

    def check_runs(self, max_payload_mb: float) -> None:
        """Refuse schedules whose runs would fail or break ``max_payload_mb`` at each
        firing: a run's function cannot take its arguments, or its job's payload is over
        the bound. Checked when the scheduler is made (start, ``check``) and by a reload
        that changes the bound: a firing has no caller to tell.

        Raises:
            InvalidSchedule: naming the schedule (and the sizes).
        """
        limit = payload_limit(max_payload_mb)
        for d in self.schedules.values():
            what = f"schedule '{d.name}'"
            try:
                size = len(new_run_job(self.huey, d, run_at=0.0).data)
            except (InvalidArgument, SerializationError) as exc:
                raise InvalidSchedule(f"{what}: {exc}") from None
            if size > limit:
                raise InvalidSchedule(f"{over_bound(what, size, max_payload_mb)}; every run "
                                      "of it would carry this payload")

    @property
    def store(self) -> Store:
        """The jobs database's store."""
        jobs = self.huey.jobs
        assert jobs is not None, "the scheduler needs a database (not immediate mode)"
        return jobs.store

    def _server_now(self) -> float:
        jobs = self.huey.jobs
        return time.time() if jobs is None else jobs.clock.now()

    # -- the work --------------------------------------------------------------

    def sync(self, now: float | None = None) -> None:
        """Write the definitions into ``runner_schedule`` (see ``sync_schedules``)."""
        at = self.clock() if now is None else now
        self.store.sync_schedules([sync_item(d, at) for d in self.schedules.values()],
                             now=at)

    def adopt(self, now: float | None = None) -> list[str]:
        """Take back this process's schedules that another process marked orphaned.

        A process marks orphaned, when it starts, every schedule its own imports do not
        define; workers of one database may import different modules, so a schedule it
        marked can still be defined here. Its next fire time is kept: the slots missed
        while it was marked go by its misfire policy. Returns the names taken back.
        """
        if not self.schedules:
            return []
        at = self.clock() if now is None else now
        adopted = self.store.adopt_schedules(sorted(self.schedules), now=at)
        if adopted:
            logger.warning("schedules %s were marked orphaned by another process that does "
                           "not define them; this scheduler defines them and fires them again",
                           ", ".join(repr(name) for name in adopted))
        return adopted

    def tick(self, now: float | None = None) -> float | None:
        """Fire every schedule due at ``now``; returns the next due time (or None).

        With ``now`` given, fire times are recorded as ``now`` (injected clock);
        otherwise the clock is read inside the firing transaction.
        """
        at = self.clock() if now is None else now
        self._ticked_at = at
        plans = []
        for name, expected in self.store.due_schedules(at):
            try:
                plan = self._plan(name, expected, at)
            except Exception:
                log_pass_failure(logger, "schedule %r: cannot plan its next run", name)
                continue
            if plan is not None:
                plans.append(plan)
        if plans:
            stamp = self.clock if now is None else (lambda: at)
            jobs = self.huey.jobs
            queue_size = self.settings.worker.queue_size
            results = self.store.fire(plans, clock=stamp, queue_size=queue_size)
            if jobs is not None and any(r.enqueued for r in results):
                jobs.wake()
            planned = {p.name: p for p in plans}
            for r in results:
                for slot, reason in r.skipped:
                    logger.info("schedule %r: slot %s skipped: %s", r.name,
                                to_datetime(slot).isoformat(), reason)
                if r.won and planned[r.name].dropped:
                    self._log_dropped(planned[r.name], len(r.enqueued))
        return self.store.next_due()

    def _plan(self, name: str, expected: float, now: float) -> FirePlan | None:
        definition = self.schedules.get(name)
        if definition is None:
            if name not in self._unknown:
                self._unknown.add(name)
                logger.warning("schedule %r is due but not defined in this process; another "
                               "scheduler must fire it", name)
            return None
        spec = definition.spec
        first, at = to_datetime(expected), to_datetime(now)
        ready = self._ready.pop(name, None)
        if ready is not None and ready[0] != expected:
            ready = None
        following = ready[1] if ready is not None else cron_times.next_fire(spec, first)
        if following > at:
            missed, earlier = [first], 0  # the usual case: exactly one slot is due
        else:
            missed, earlier = self._missed(definition, first, at)
            following = cron_times.next_fire(spec, at)
        run = misfire.plan_misfire(definition.misfire, missed, at, grace=definition.grace,
                                   max_catchup=definition.max_catchup, name=name)
        jobs = [replace(ready[2], run_at=now) if ready is not None and slot == first
                else new_run_job(self.huey, definition, run_at=now) for slot in run]
        if definition.jitter:
            jobs = [replace(j, run_at=now + random.uniform(0, definition.jitter)) for j in jobs]
        dropped = len(missed) - len(run) + earlier
        return FirePlan(name, expected, following.timestamp(),
                              [s.timestamp() for s in run], jobs, definition.overlap, dropped)

    def _log_dropped(self, plan: FirePlan, enqueued: int) -> None:
        """Say what the misfire policy did with the slots missed while nothing fired
        (the plan's first missed slot is the one expected; it ran or was dropped)."""
        logger.warning("schedule %r: %d of %d missed slot(s) since %s dropped by misfire %r; "
                       "%d run(s) enqueued", plan.name, plan.dropped,
                       plan.dropped + len(plan.slots), to_datetime(plan.expected).isoformat(),
                       self.schedules[plan.name].misfire, enqueued)

    def prepare(self, horizon: float) -> None:
        """Plan the slots due by ``horizon`` ahead of time, so firing is only the transaction."""
        for name, expected in self.store.due_schedules(horizon):
            definition = self.schedules.get(name)
            ready = self._ready.get(name)
            if definition is None or (ready is not None and ready[0] == expected):
                continue
            following = cron_times.next_fire(definition.spec, to_datetime(expected))
            self._ready[name] = (expected, following,
                                 new_run_job(self.huey, definition, run_at=expected))

    @staticmethod
    def _missed(definition: ScheduleDef, first: datetime,
                now: datetime) -> tuple[list[datetime], int]:
        """The latest missed slots in ``[first, now]`` the misfire policy may need.

        Returns those slots and how many earlier ones were missed (counted up to
        :data:`_COUNT_CAP`). The window grows from the end, so an every-second schedule
        that was down for a day costs little.
        """
        spec, lower = definition.spec, first - timedelta(microseconds=1)
        if definition.misfire == "skip":
            start = max(lower, now - timedelta(seconds=definition.grace, microseconds=1))
            slots = cron_times.slots_between(spec, start, now, 1_000_000)
        else:
            keep = 1 if definition.misfire == "once" else definition.max_catchup
            span = timedelta(seconds=60)
            while True:
                start = max(lower, now - span)
                slots = cron_times.slots_between(spec, start, now, 1_000_000)
                if len(slots) >= keep or start == lower:
                    break
                span *= 4
        earlier = (len(cron_times.slots_between(spec, lower, start, _COUNT_CAP))
                   if start > lower else 0)
        return slots, earlier

    # -- the thread ----------------------------------------------------------

    def start(self) -> None:
        """Sync the definitions, then fire in a daemon thread."""
        self._stop.clear()
        self.sync()
        self._thread = threading.Thread(target=self._run, name="runner-scheduler", daemon=True)
        self._thread.start()
        logger.info("scheduler started with %d schedules", len(self.schedules))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        """True while the loop runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        due = self._step()
        seen = self._version(None)
        while True:
            wait = self.check_interval if due is None else min(self.check_interval,
                                                               due - self.clock())
            if self._stop.wait(max(wait, 0.0)) or self._stop.is_set():
                return
            version = self._version(seen)
            if due is not None and self.clock() >= due:
                due = self._step()
                if due is not None and due <= self._ticked_at:
                    # Due but not ours to fire (defined in another process): look later.
                    due = self._ticked_at + self.check_interval
            elif version != seen:
                try:
                    due = self.store.next_due()
                except Exception:
                    log_pass_failure(logger, "scheduler: cannot read the next due time")
                    due = self.clock() + _RETRY_AFTER
            seen = version
            if self._adopt():
                due = self.clock()  # fire what fell due while they were marked
            if due is not None and due != self._prepared_for and due - self.clock() < _AHEAD:
                self._prepared_for = due
                try:
                    self.prepare(due)
                except Exception:
                    log_pass_failure(logger, "scheduler: planning ahead failed; planning when due")
            self._prune()

    def _step(self) -> float | None:
        try:
            return self.tick()
        except Exception:
            log_pass_failure(logger, "scheduler pass failed; retrying in %.1fs", _RETRY_AFTER)
            return self.clock() + _RETRY_AFTER

    def _adopt(self) -> bool:
        now = self.clock()
        if now - self._adopted_at < _ADOPT_EVERY:
            return False
        self._adopted_at = now
        try:
            return bool(self.adopt(now))
        except Exception:
            log_pass_failure(logger, "scheduler: cannot look for orphaned schedules")
            return False

    def _version(self, previous: int | None) -> int | None:
        try:
            return self.store.data_version()
        except Exception:
            return previous

    def _prune(self) -> None:
        now = self.clock()
        if now - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = now
        try:
            self.store.prune_runs(before=now - RUN_RETENTION)
        except Exception:
            log_pass_failure(logger, "scheduler: pruning old slot records failed")


def _check_arguments_serialize(definitions: Iterable[ScheduleDef], kind: str) -> None:
    """Refuse at start a schedule whose arguments the configured serializer cannot carry
    (the definition itself only checks that they pickle)."""
    serializer = make_serializer(kind)
    for d in definitions:
        try:
            serializer.serialize((tuple(d.args), dict(d.kwargs)))
        except Exception as exc:
            raise InvalidSchedule(f"schedule '{d.name}': args/kwargs cannot be serialized with "
                                  f"[runner] serializer = \"{kind}\": {exc}") from None
