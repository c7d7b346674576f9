"""huey's own test suite, run against RunnerHuey: huey's promises kept by our storage.

The tests ship inside the installed huey wheel (``huey.tests``, MIT licence,
copyright Charles Leifer) and are imported from there, never copied, so a huey
upgrade brings its new promises with it. Each upstream ``BaseTestCase`` class
runs here with ``get_huey()`` answering a :class:`~runner.runner_huey.RunnerHuey` over a
fresh SQLite file, configured as the upstream test configured its MemoryHuey
(results, immediate mode, intermediate errors, overridden methods), and with
huey's defaults for what huey's ``task()`` leaves out (no retries, no timeout,
no backoff or jitter).

What we do differently on purpose is listed in :data:`DIFFERENCES`, each with
its reason; those tests are expected to fail (strictly: one that starts passing
fails the build until the entry is removed). Anything else that fails is a
broken promise. The README's "Differences from huey" section says the same.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import unittest
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from huey.api import Huey, MemoryHuey
from huey.tests import (
    test_api,
    test_asyncio,
    test_consumer,
    test_immediate,
    test_priority,
    test_registry,
    test_serializer,
    test_signals,
)
from huey.tests.base import BaseTestCase

from runner.config import Settings, WorkerSection
from runner.errors import ConfigError, InvalidArgument
from runner.runner_huey import RunnerHuey

# Not run: huey's storage classes (test_storage, test_wrappers), its crontab, stats,
# Django, MiniHuey and utility modules: none of them goes through our storage.
UPSTREAM_MODULES = (test_api, test_asyncio, test_consumer, test_immediate, test_priority,
                    test_registry, test_serializer, test_signals)

#: Why huey skips the tests it marks slow unless HUEY_SLOW_TESTS is set.
SLOW = "skipping slow test"

#: huey's defaults for the options huey's ``task()`` leaves out.
HUEY_DEFAULTS = WorkerSection(retry_limit=0, retry_delay=0.0, backoff=1.0, jitter=0.0,
                              timeout=0.0, poll_interval=0.05, prefetch=0, queue_size=0)

# Each reason is short (pytest prints it for every test); the README's "Differences
# from huey" says more.
#: The worker does not run huey's in-process scheduler.
PERIODIC = "periodic_task() refused with a ConfigError: use runner.scheduled_task"
#: huey raises ConfigurationError for them; we run them on the worker thread's loop.
ASYNC = "async def functions are tasks here"
#: huey queues a delayed task first and moves it to the schedule when a worker reads it;
#: read_schedule() is empty here because due jobs are claimed straight from the table.
SCHEDULE = "a delayed job is in scheduled() at once, never dequeued early"
#: huey's queue is first in, first out whatever the eta.
ORDER = "jobs are claimed by priority, then due time"
#: Upstream tests use utc=False; huey's local-to-UTC conversion drops microseconds.
UTC = "RunnerHuey keeps times in UTC (utc=True)"
#: [worker], then the decorator, then [tasks.NAME]; the wrapper and Task class read None
#: until then, and the decorator's retry delay stays in the policy, not on each Task.
OPTIONS = "task options are resolved at enqueue into a retry policy"
#: The test swaps in or inspects one of huey's own storage classes.
STORAGE = "the queue is the jobs table, not a huey storage class"

#: ``Class.test`` -> why the runner differs from huey there on purpose.
DIFFERENCES: dict[str, str] = {
    **dict.fromkeys([
        "TestQueue.test_read_periodic", "TestQueue.test_retry_delay_periodic",
        "TestQueue.test_retry_periodic", "TestQueue.test_revoke_periodic",
        "TestDecorators.test_call_periodic_task", "TestDecorators.test_dynamic_periodic_tasks",
        "TestDecorators.test_periodic_task", "TestHueyAPIs.test_serialize_deserialize",
        "TestHueyAPIs.test_serialize_deserialize_signed",
        "TestDocstring.test_docstring_preserved",
        "TestConsumerIntegration.test_consumer_periodic_tasks",
        "TestConsumerIntegration.test_scheduler_periodic_catch_up",
        "TestConsumerIntegration.test_scheduler_periodic_enqueue_error",
        "TestPriority.test_periodic_priority", "TestRegistry.test_periodic_tasks"], PERIODIC),
    "TestAsyncTasks.test_async_task_rejected": ASYNC,
    **dict.fromkeys([
        "TestQueue.test_scheduling", "TestQueue.test_schedule_s", "TestQueue.test_read_schedule",
        "TestQueue.test_scheduling_expires", "TestQueue.test_pending_scheduled_unregistered",
        "TestDecorators.test_task_id", "TestChordPrimitive.test_chord_scheduling",
        "TestStorageWrappers.test_storage_wrappers",
        "TestConsumerIntegration.test_consumer_schedule_task",
        "TestPriority.test_schedule_priority", "TestSignals.test_signals_simple"], SCHEDULE),
    "TestQueue.test_reschedule": ORDER,
    **dict.fromkeys([
        "TestQueue.test_expires", "TestQueue.test_reschedule_expires",
        "TestQueue.test_retrytask_eta_delay"], UTC),
    **dict.fromkeys([
        "TestDecorators.test_task_decorator", "TestDecorators.test_task_parameters",
        "TestDecorators.test_task_wrapper_retry_attrs", "TestQueue.test_retry_backoff",
        "TestRateLimit.test_task_with_retries", "TestRegistry.test_message_wrapping"], OPTIONS),
    **dict.fromkeys([
        "TestChordPrimitive.test_chord_bookkeeping_cleared",
        "TestImmediateMemoryStorage.test_immediate_storage",
        "TestImmediateMemoryStorage.test_immediate_real_storage"], STORAGE),
}


#: How each difference shows (anything else is a new failure): huey's assertion fails,
#: except where said.
RAISES: dict[str, type[BaseException]] = {
    **{key: ConfigError for key, reason in DIFFERENCES.items() if reason == PERIODIC},
    "TestDecorators.test_dynamic_periodic_tasks": AssertionError,  # raised inside a job
    "TestQueue.test_pending_scheduled_unregistered": AttributeError,  # dequeue() gave None
    "TestChordPrimitive.test_chord_bookkeeping_cleared": AttributeError,  # no _counters
    # schedule(0, eta=...) calls task_a(n) with no argument: refused before it is written
    "TestQueue.test_read_schedule": InvalidArgument,
}


class RunnerCase(BaseTestCase):
    """Runs an upstream test case against a RunnerHuey on a fresh database file."""

    def get_huey(self) -> Huey:
        model = super().get_huey()  # the upstream MemoryHuey, read for its options
        directory = Path(tempfile.mkdtemp(prefix="huey-upstream-"))
        self.addCleanup(shutil.rmtree, directory, True)
        settings = Settings(worker=HUEY_DEFAULTS).with_database(directory / "jobs.db")
        upstream = type(model)
        cls = RunnerHuey if upstream in (MemoryHuey, Huey) else \
            type(f"Runner{upstream.__name__}", (RunnerHuey, upstream), {})
        huey = cls(model.name, settings=settings)
        huey.results = model.results
        huey.store_none = model.store_none
        huey.store_intermediate_errors = model.store_intermediate_errors
        huey.immediate_use_memory = model.immediate_use_memory
        if model.immediate:
            huey.immediate = True
        self.addCleanup(_close, huey)
        return huey


def _close(huey: RunnerHuey) -> None:
    storage = huey._storage
    jobs = getattr(storage, "db", None)
    if jobs is not None:
        storage.store.close()  # type: ignore[union-attr]
        jobs.close()


def _expect_failure(method: Callable[..., Any], reason: str,
                    raises: type[BaseException]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(self: unittest.TestCase) -> Any:
        return method(self)

    return pytest.mark.xfail(reason=reason, raises=raises, strict=True)(run)


def _runner_cases() -> dict[str, type]:
    cases: dict[str, type] = {}
    for module in UPSTREAM_MODULES:
        for name, upstream in vars(module).items():
            if not (isinstance(upstream, type) and issubclass(upstream, BaseTestCase)
                    and upstream.__module__ == module.__name__ and name.startswith("Test")):
                continue
            attrs: dict[str, Any] = {"__module__": __name__,
                                     "__qualname__": f"{module.__name__.rsplit('.', 1)[1]}"
                                                     f"_{name}"}
            for test in dir(upstream):
                method = getattr(upstream, test)
                if getattr(method, "__unittest_skip_why__", None) == SLOW:
                    attrs[test] = method = method.__wrapped__  # a few seconds: run them
                key = f"{name}.{test}"
                if key in DIFFERENCES:
                    attrs[test] = _expect_failure(method, DIFFERENCES[key],
                                                  RAISES.get(key, AssertionError))
            cases[attrs["__qualname__"]] = type(attrs["__qualname__"], (RunnerCase, upstream),
                                                attrs)
    return cases


globals().update(_runner_cases())


def test_every_listed_difference_names_an_upstream_test() -> None:
    known = {f"{name.split('_', 2)[2]}.{test}" for name, case in _runner_cases().items()
             for test in dir(case) if test.startswith("test")}
    assert set(DIFFERENCES) <= known, set(DIFFERENCES) - known


def test_the_upstream_suite_is_there_to_run() -> None:
    tests = sum(1 for case in _runner_cases().values() for t in dir(case) if t.startswith("test"))
    assert tests > 150, f"only {tests} upstream tests found in the installed huey"
