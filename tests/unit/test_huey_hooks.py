"""The huey methods this project overrides or calls by a private name keep their shape.

huey is pinned to one minor version; these hooks are not its public API, so an
upgrade may change them without notice. Each recorded signature is the one our
override was written against: when huey changes one, this test names it, and
the override must be read again before the record is updated.
"""

from __future__ import annotations

import inspect

import huey
from huey.api import Huey, Task, TaskWrapper
from huey.consumer import Consumer
from huey.storage import BaseStorage

from runner.huey_api import HueyApi
from runner.runner_huey import RunnerHuey
from runner.store.job_storage import JobStorage
from runner.store.kvstore import KeyValueStore
from runner.task import RunnerTask, RunnerTaskWrapper
from runner.worker.manager import RunnerConsumer

#: huey class -> method -> its signature when our override was written (huey 3.5).
RECORDED: dict[type, dict[str, str]] = {
    Huey: {
        "__init__": "(self, name='huey', results=True, store_none=False, utc=True, "
                    "immediate=False, serializer=None, compression=False, use_zlib=False, "
                    "immediate_use_memory=True, storage_class=None, "
                    "store_intermediate_errors=True, **storage_kwargs)",
        "create_storage": "(self)",
        "enqueue": "(self, task)",
        "dequeue": "(self)",
        "execute": "(self, task, timestamp=None)",
        "is_revoked": "(self, task, timestamp=None, peek=True)",
        "delete": "(self, key)",
        "_emit": "(self, signal, task, *args, **kwargs)",
        "_requeue_task": "(self, task, timestamp, retry_eta=None)",
        "add_schedule": "(self, task)",
        "ready_to_run": "(self, task, timestamp=None)",
        "_get_timestamp": "(self)",
        "revoke": "(self, task, revoke_until=None, revoke_once=False)",
        "revoke_all": "(self, task_class, revoke_until=None, revoke_once=False)",
        "_result_handle": "(self, task)",
        "_run_post_execute": "(self, task, task_value, exception)",
        "put_result": "(self, key, data)",
        "build_error_result": "(self, task, exception)",
        "result": "(self, id, blocking=False, timeout=None, backoff=1.15, max_delay=1.0, "
                  "revoke_on_timeout=False, preserve=False)",
        "task": "(self, retries=0, retry_delay=0, retry_backoff=0, priority=None, "
                "context=False, name=None, expires=None, timeout=None, **kwargs)",
        "periodic_task": "(self, validate_datetime, retries=0, retry_delay=0, retry_backoff=0, "
                         "priority=None, context=False, name=None, expires=None, timeout=None, "
                         "**kwargs)",
        # Called, not overridden.
        "_pipeline_results": "(self, task)",
        "serialize_task": "(self, task)",
        "deserialize_task": "(self, data)",
    },
    BaseStorage: {
        "__init__": "(self, name='huey', **storage_kwargs)",
        "enqueue": "(self, data, priority=None)",
        "dequeue": "(self)",
        "queue_size": "(self)",
        "enqueued_items": "(self, limit=None)",
        "flush_queue": "(self)",
        "add_to_schedule": "(self, data, ts)",
        "read_schedule": "(self, ts)",
        "schedule_size": "(self)",
        "scheduled_items": "(self, limit=None)",
        "flush_schedule": "(self)",
        "put_data": "(self, key, value, is_result=False)",
        "peek_data": "(self, key)",
        "peek_many": "(self, keys)",
        "pop_data": "(self, key)",
        "wait_result": "(self, key, timeout=None, backoff=1.15, max_delay=1.0)",
        "has_data_for_key": "(self, key)",
        "delete_data": "(self, key)",
        "put_if_empty": "(self, key, value, ttl=None)",
        "incr": "(self, key, amount=1)",
        "delete_counter": "(self, key)",
        "result_store_size": "(self)",
        "result_items": "(self)",
        "flush_results": "(self)",
        "flush_counters": "(self)",
    },
    Task: {
        "__init__": "(self, args=None, kwargs=None, id=None, eta=None, retries=None, "
                    "retry_delay=None, priority=None, expires=None, on_complete=None, "
                    "on_error=None, expires_resolved=None, timeout=None, chord_config=None, "
                    "retry_backoff=None)",
        "create_id": "(self)",
    },
    TaskWrapper: {
        "__init__": "(self, huey, func, context=False, name=None, task_base=None, **settings)",
        "create_task": "(self, func, context=False, name=None, **settings)",
        "call_local": "(self, *args, **kwargs)",
        "unregister": "(self)",
        "map": "(self, it)",
        "s": "(self, *args, **kwargs)",
    },
    Consumer: {
        "__init__": "(self, huey, workers=1, periodic=True, initial_delay=0.1, backoff=1.15, "
                    "max_delay=10.0, scheduler_interval=1, worker_type='thread', "
                    "check_worker_health=True, health_check_interval=10, flush_locks=False, "
                    "extra_locks=None, max_tasks=None, shutdown_timeout=None, "
                    "graceful_signal='INT')",
        "_set_signal_handlers": "(self)",
        "loop": "(self, health_check_ts=None)",
        "start": "(self)",
        "stop": "(self, graceful=False)",
    },
}

#: Our subclasses and the huey class each overrides.
SUBCLASSES = [((RunnerHuey, HueyApi), Huey), ((JobStorage, KeyValueStore), BaseStorage),
              ((RunnerTask,), Task), ((RunnerTaskWrapper,), TaskWrapper),
              ((RunnerConsumer,), Consumer)]


def _overridden(ours: tuple[type, ...], base: type) -> set[str]:
    """Methods our classes define that the huey class has too."""
    return {name for cls in ours for name, value in vars(cls).items()
            if inspect.isfunction(value) and inspect.isfunction(getattr(base, name, None))}


def test_huey_is_the_pinned_minor_version():
    assert huey.__version__.startswith("3.5."), (
        f"huey {huey.__version__}: the hooks below were written against 3.5; read each "
        "override again, then update the pin and RECORDED")


def test_every_overridden_huey_method_is_recorded():
    for ours, base in SUBCLASSES:
        missing = _overridden(ours, base) - set(RECORDED[base])
        assert not missing, (f"{base.__name__}: overridden but not recorded here: "
                             f"{sorted(missing)}")


def test_an_unrecorded_override_is_named():
    class Sneaky(RunnerHuey):
        def _execute(self, task, timestamp):  # noqa: ANN001, ANN202
            return None

    assert _overridden((Sneaky,), Huey) - set(RECORDED[Huey]) == {"_execute"}


def test_recorded_huey_hooks_keep_their_signature():
    changed = []
    for base, methods in RECORDED.items():
        for name, recorded in methods.items():
            method = getattr(base, name, None)
            if method is None:
                changed.append(f"{base.__name__}.{name} is gone")
                continue
            now = str(inspect.signature(method))
            if now != recorded:
                changed.append(f"{base.__name__}.{name}{now}, was {recorded}")
    assert not changed, "huey hooks changed shape: " + "; ".join(changed)


def test_private_huey_state_read_by_the_runner_exists():
    instance = Huey("hooks", immediate=True)
    for attribute in ("_immediate", "_tasks_in_flight", "_registry"):
        assert hasattr(instance, attribute), f"huey no longer has Huey.{attribute}"
