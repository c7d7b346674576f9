"""huey's own decorators on a :class:`~runner.runner_huey.RunnerHuey`, giving runner tasks.

Code written for huey calls ``huey.task()``; on our instance that makes the same
task as :func:`runner.task` (huey's option names are accepted beside ours), so
jobs land in the jobs table with leases, retries and outcomes. huey's periodic
tasks depend on huey's in-process scheduler, which a runner worker does not run:
``periodic_task()`` refuses at once and names :func:`runner.scheduled_task`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from huey.api import TaskWrapper

from runner.errors import ConfigError, DuplicateJob
from runner.store.job_rows import NewJob
from runner.task import RunnerTask, RunnerTaskWrapper
from runner.task_options import (
    check_on_failure,
    check_options,
    collect_options,
    exception_classes,
    task_flow,
)
from runner.uniqueness import unique_spec

if TYPE_CHECKING:
    from runner.store.job_storage import JobStorage

#: Keywords of :func:`runner.task` that huey's ``task()`` does not have.
_RUNNER_OPTIONS = frozenset({"queue", "retry_limit", "max_retries", "backoff",
                             "max_retry_delay", "jitter"})
_RUNNER_HOOKS = frozenset({"retry_on", "no_retry_on", "on_failure"})
#: Flow control and unique jobs, as :func:`runner.task` takes them.
_RUNNER_FLOW = frozenset({"concurrency", "concurrency_key", "rate_limit", "unique",
                          "unique_key", "unique_for", "unique_states"})


class HueyApi:
    """``task()``, ``context_task()`` and ``periodic_task()`` as huey users call them,
    and enqueueing the same Task object twice."""

    def new_job(self, task: RunnerTask, *, bounded: bool = True) -> NewJob:
        raise NotImplementedError  # RunnerHuey's

    def insert_task(self, jobs: JobStorage, task: RunnerTask) -> RunnerTask:
        """Write the row of an enqueued task; returns the task written (maybe a copy).

        huey runs a Task object again each time it is enqueued (a retried task's
        ``.error()`` handler is enqueued after every failed attempt, under one id).
        A finished row with that id waits again, keeping its history; a row still
        waiting or running gets a copy under a new id, as huey would hold two messages.
        """
        job = self.new_job(task)
        # an id made here, once: a Task enqueued again may find its earlier row
        job.fresh = task.takes_fresh_id(job.id)
        try:
            existing = jobs.insert_jobs([job]).duplicates.get(job.id)
            if existing is not None:  # a unique job: the caller gets the existing one
                task.duplicate_of = task.id = existing
                task.revoke_id = f"r:{existing}"
            return task
        except DuplicateJob as exc:
            if exc.by != "id":
                raise
        jobs.flush_acks()  # a completion still buffered in this process counts as finished
        limit = jobs.settings.worker.queue_size
        if jobs.store.rearm(jobs.clock.jobs([job])[0], now=jobs.clock.now(), queue_size=limit):
            jobs.wake()
            return task
        twin = copy.copy(task)  # the caller's Task and its Result keep their id
        twin.id = twin.create_id()
        twin.revoke_id = f"r:{twin.id}"
        jobs.insert_jobs([self.new_job(twin)])
        return twin

    def task(self, retries: int | None = None, retry_delay: float | None = None,
             retry_backoff: float | None = None, priority: int | None = None,
             context: bool = False, name: str | None = None, expires: Any = None,
             timeout: float | None = None, **options: Any
             ) -> Callable[[Callable[..., Any]], RunnerTaskWrapper]:
        """huey's ``@huey.task()``, making a runner task.

        ``retries`` is ``retry_limit`` and ``retry_backoff`` is ``backoff``; an
        option left out comes from ``[worker]`` (huey's own defaults are 0 retries
        and no timeout), and ``[tasks.NAME]`` in settings.toml wins over all. The
        options of :func:`runner.task` are taken too: ``queue``, ``retry_on``, ...,
        the limits (``concurrency``, ``concurrency_key``, ``rate_limit``) and unique
        jobs (``unique``, ``unique_key``, ``unique_for``, ``unique_states``).
        """
        unknown = set(options) - _RUNNER_OPTIONS - _RUNNER_HOOKS - _RUNNER_FLOW
        if unknown:
            raise TypeError(f"task() got unknown option(s): {', '.join(sorted(unknown))}")
        collected = collect_options(
            queue=options.get("queue"), priority=priority,
            retry_limit=options.get("retry_limit"),
            max_retries=retries if retries is not None else options.get("max_retries"),
            retry_delay=retry_delay,
            backoff=retry_backoff if retry_backoff is not None else options.get("backoff"),
            max_retry_delay=options.get("max_retry_delay"), jitter=options.get("jitter"),
            timeout=timeout)

        def decorate(func: Callable[..., Any]) -> RunnerTaskWrapper:
            if isinstance(func, TaskWrapper):
                func = func.func
            task_name = name or func.__name__
            check_options(task_name, collected)
            check_on_failure(task_name, options.get("on_failure"))
            flow = task_flow(task_name, options.get("concurrency"),
                             options.get("concurrency_key"), options.get("rate_limit"))
            unique = unique_spec(task_name, unique=bool(options.get("unique")),
                                 unique_key=options.get("unique_key"),
                                 unique_for=options.get("unique_for"),
                                 unique_states=options.get("unique_states"), func=func)
            wrapper = RunnerTaskWrapper(
                self, func, name=name, options=dict(collected),  # type: ignore[arg-type]
                retry_on=exception_classes(task_name, "retry_on", options.get("retry_on", ())),
                no_retry_on=exception_classes(task_name, "no_retry_on",
                                              options.get("no_retry_on", ())),
                on_failure=options.get("on_failure"), context=context, expires=expires,
                flow=flow)
            wrapper.unique = unique
            return wrapper

        return decorate

    def periodic_task(self, validate_datetime: Callable[..., bool], *args: Any,
                      **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        """Refused: periodic work is declared with :func:`runner.scheduled_task`."""
        raise ConfigError(
            "huey's periodic_task() does not run under the runner (its worker does not run "
            "huey's scheduler); declare the task with runner.scheduled_task(cron=...) instead, "
            "or runner.task for a task you enqueue yourself")
