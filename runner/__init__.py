"""jobrunner: background jobs on one SQLite file, with huey's consumer.

The public API. Everything else in the package is internal.
"""

from __future__ import annotations

# First of all: huey and peewee then load without the Redis and PostgreSQL drivers.
from runner import drivers  # noqa: F401
from runner.attempt import CurrentJob, current_job
from runner.config import Settings
from runner.control import (
    cancel,
    get_schedule,
    list_schedules,
    pause_queue,
    pause_schedule,
    pause_task,
    replay,
    resume_queue,
    resume_schedule,
    resume_task,
    run_schedule_now,
    schedule_runs,
    skip_next_run,
)
from runner.errors import (
    ConfigError,
    DatabaseCorrupt,
    DatabaseLocked,
    DatabaseUnavailable,
    EventNotFound,
    Fatal,
    InvalidAction,
    InvalidArgument,
    InvalidSchedule,
    JobCancelled,
    JobNotFound,
    QueueFull,
    Retry,
    RunnerError,
    ScheduleNotFound,
    SerializationError,
    TaskAborted,
    TaskTimeout,
    UnknownTask,
)
from runner.events.delivery import emit, emit_many, event_handler
from runner.progress import Progress, get_progress, progress
from runner.registry import configure, enqueue_many, get_huey, task
from runner.scheduling.definitions import ScheduleDef, scheduled_task
from runner.settings_loader import load_settings
from runner.store.schedule_rows import RunRow, ScheduleRow
from runner.store.states import JobState
from runner.task import Failure

__all__ = [
    # defining and enqueueing work
    "task", "enqueue_many", "configure", "get_huey",
    # periodic tasks and their control
    "scheduled_task", "ScheduleDef", "list_schedules", "get_schedule", "schedule_runs",
    "pause_schedule", "resume_schedule", "run_schedule_now", "skip_next_run", "ScheduleRow",
    "RunRow",
    # events
    "event_handler", "emit", "emit_many", "replay",
    # queues and tasks: pause, resume, cancel a job
    "pause_queue", "resume_queue", "pause_task", "resume_task", "cancel",
    # control flow inside tasks
    "Retry", "Fatal", "Failure", "current_job", "CurrentJob", "JobCancelled",
    # progress of a running job
    "progress", "get_progress", "Progress",
    # settings and states
    "Settings", "load_settings", "JobState",
    # errors
    "RunnerError", "ConfigError", "InvalidSchedule", "DatabaseCorrupt", "DatabaseLocked",
    "DatabaseUnavailable", "SerializationError", "UnknownTask", "QueueFull", "JobNotFound",
    "EventNotFound", "TaskTimeout", "TaskAborted", "ScheduleNotFound", "InvalidAction",
    "InvalidArgument",
]
