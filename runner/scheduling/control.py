"""Control of schedules from any process: pause, resume, run now, skip next, list.

The one implementation behind the public API, ``python -m runner schedules``
and the dashboard (all reach it through :mod:`runner.control`). Each function
acts on ``store`` when given (the dashboard's read-write handle), else on the
runner's store (``huey``, default the process-wide one). Each is one short
transaction; a running scheduler notices the change within its
``check_interval``. A schedule that is defined in this process but not yet in
the table (no scheduler has started) is added first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from runner.config import Settings
from runner.errors import JobNotFound, ScheduleNotFound
from runner.registry import get_huey, import_task_modules, runner_for
from runner.runner_huey import RunnerHuey
from runner.scheduling import cron_times
from runner.scheduling.definitions import ScheduleDef, effective_schedules, parse_spec, registry
from runner.scheduling.scheduler import new_run_job, sync_item, to_datetime
from runner.store.backend import Store
from runner.store.schedule_rows import RunRow, ScheduleRow
from runner.store.server_clock import ServerClock
from runner.store.states import WAITING, JobState


@dataclass(frozen=True)
class RunNow:
    """What asking a schedule for an extra run did."""

    job_id: str
    """The run's job: the new one, or the live one that holds its unique key."""
    existing_state: str | None = None
    """That live job's state when it was there already (nothing was written); None when
    the job is new."""

    @property
    def wording(self) -> str:
        """What front ends say before the job's id: ``enqueued job``, or why none was."""
        state = self.existing_state
        if state is None:
            return "enqueued job"
        if state in WAITING:
            return "a run is already waiting: job"
        if state == JobState.EXECUTING:
            return "a run is already running: job"
        return f"a {state} run holds its unique key: job"


def list_schedules(*, huey: RunnerHuey | None = None,
                   store: Store | None = None) -> list[ScheduleRow]:
    """Every schedule in the database, by name, with its last job's state."""
    return _store(huey, store).list_schedules()


def get_schedule(name: str, *, huey: RunnerHuey | None = None,
                 store: Store | None = None) -> ScheduleRow:
    """One schedule.

    Raises:
        ScheduleNotFound: no schedule of that name, in the table or in code.
    """
    return _require(name, huey, store)


def schedule_runs(name: str, *, limit: int = 100, huey: RunnerHuey | None = None,
                  store: Store | None = None) -> list[RunRow]:
    """The most recent fired (or skipped) slots of a schedule, oldest first."""
    _require(name, huey, store)
    return _store(huey, store).schedule_runs(name, limit=limit)


def pause_schedule(name: str, *, huey: RunnerHuey | None = None, store: Store | None = None,
                   now: float | None = None) -> bool:
    """Stop firing a schedule until :func:`resume_schedule`; survives restarts.

    Returns:
        False when it was paused already.

    Raises:
        ScheduleNotFound: no such schedule.
    """
    row = _require(name, huey, store)
    _store(huey, store).set_paused(name, True, now=time.time() if now is None else now)
    return not row.paused


def resume_schedule(name: str, *, huey: RunnerHuey | None = None, store: Store | None = None,
                    now: float | None = None) -> bool:
    """Fire a paused schedule again, from its next slot (paused slots are not caught up).

    Returns:
        False when it was not paused.

    Raises:
        ScheduleNotFound: no such schedule.
    """
    row = _require(name, huey, store)
    at = _server_now(huey, store) if now is None else now
    upcoming = cron_times.next_fire(parse_spec(row.expression, row.tz, row.name), to_datetime(at))
    _store(huey, store).set_paused(name, False, now=at, next_fire_at=upcoming.timestamp())
    return row.paused


def skip_next_run(name: str, *, huey: RunnerHuey | None = None, store: Store | None = None,
                  now: float | None = None) -> bool:
    """Skip the schedule's next slot (recorded as skipped); later slots fire as usual.

    Returns:
        False when a skip of its next slot was asked already (one slot is skipped, not two).

    Raises:
        ScheduleNotFound: no such schedule.
    """
    row = _require(name, huey, store)
    _store(huey, store).set_skip_next(name, True, now=time.time() if now is None else now)
    return not row.skip_next


def run_schedule_now(name: str, *, huey: RunnerHuey | None = None, store: Store | None = None,
                     settings: Settings | None = None, now: float | None = None) -> str:
    """Enqueue an extra run now; the schedule's next fire time is not touched.

    The job is built from the schedule's definition in code. With ``settings``
    (the dashboard, ``python -m runner``) the process-wide runner is pointed at
    them, and at ``store``, and their ``[runner] imports`` are imported first.

    Returns:
        The new job's id; for a unique task whose key a live job holds, that job's id
        (nothing is written), as a unique call returns that job's Result.

    Raises:
        ScheduleNotFound: no schedule of that name, in code or in the database, or one the
            database holds is not defined in this process (import its module).
        ConfigError: a task module cannot be imported.
    """
    return run_now(name, huey=huey, store=store, settings=settings, now=now).job_id


def run_now(name: str, *, huey: RunnerHuey | None = None, store: Store | None = None,
            settings: Settings | None = None, now: float | None = None) -> RunNow:
    """:func:`run_schedule_now`, saying whether the job is new (what front ends print)."""
    instance = runner_for(settings, None if store is None else store.address, huey=huey)
    if settings is not None:
        import_task_modules(settings.runner.imports)
    definition = _definition(name, instance)
    if definition is None:
        target = _store(instance, None)
        if target.get_schedule(name) is None:
            raise ScheduleNotFound(_unknown(name, target))
        raise ScheduleNotFound(f"schedule {name!r} is not defined in this process; import the "
                               "module that defines it ([runner] imports)")
    _require(name, instance, None)
    jobs = instance.jobs
    assert jobs is not None
    at = jobs.clock.now() if now is None else now
    job = new_run_job(instance, definition, run_at=at)
    holder = jobs.store.record_manual_run(name, job, now=at,
                                          queue_size=instance.settings.worker.queue_size)
    if holder is not None:
        try:
            return RunNow(holder, jobs.store.get_job(holder).state)
        except JobNotFound:  # it ended, and was pruned, since
            return RunNow(holder, "finished")
    jobs.wake()
    return RunNow(job.id)


def schedule_zone(name: str, *, huey: RunnerHuey | None = None) -> str | None:
    """The time zone of the schedule ``name`` as this process defines it (``[schedules.NAME]``
    and ``[runner] timezone`` applied), or None when it defines no such schedule."""
    definition = _definition(name, huey or get_huey())
    return None if definition is None else definition.tz


def upcoming_fire_times(row: ScheduleRow, n: int = 3) -> list[datetime]:
    """The next ``n`` fire times of a stored schedule, from its ``next_fire_at``."""
    if row.next_fire_at is None or n <= 0:
        return []
    spec = parse_spec(row.expression, row.tz, row.name)
    first = to_datetime(row.next_fire_at)
    return [first, *cron_times.fire_times(spec, first, n - 1)]


def _store(huey: RunnerHuey | None, store: Store | None) -> Store:
    if store is not None:
        return store
    jobs = (huey or get_huey()).jobs
    assert jobs is not None, "schedules need a database (not immediate mode)"
    return jobs.store


def _server_now(huey: RunnerHuey | None, store: Store | None) -> float:
    """Now by the database server's clock, which the schedulers of every host judge
    fire times by (one read of it for a store handed in)."""
    if store is not None:
        return ServerClock(store).now()
    jobs = (huey or get_huey()).jobs
    assert jobs is not None, "schedules need a database (not immediate mode)"
    return jobs.clock.now()


def _definition(name: str, huey: RunnerHuey) -> ScheduleDef | None:
    definition = registry.get(name)
    if definition is None:
        return None
    return effective_schedules(huey.settings, [definition], strict=False)[0]


def _unknown(name: str, store: Store) -> str:
    """Why ``name`` names no schedule, with the names the database knows."""
    known = ", ".join(r.name for r in store.list_schedules()) or "none"
    return f"no schedule named {name!r} (known: {known})"


def _require(name: str, huey: RunnerHuey | None, store: Store | None) -> ScheduleRow:
    target = _store(huey, store)
    row = target.get_schedule(name)
    if row is not None:
        return row
    definition = registry.get(name)
    if definition is not None:
        definition = _definition(name, huey or get_huey())
    if definition is None:
        raise ScheduleNotFound(_unknown(name, target))
    now = _server_now(huey, store)
    target.ensure_schedule(sync_item(definition, now), now=now)
    row = target.get_schedule(name)
    assert row is not None
    return row
