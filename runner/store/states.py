"""The job states and every set of them the code asks about, derived from :class:`JobState`.

The states are spelled here and in :mod:`runner.store.sqlite.transitions` (the only
code that moves a job from one state to another) and nowhere else;
``tests/unit/test_state_machine.py`` holds that. SQL of the read side uses the
``*_SQL`` forms below so a partial index and the query it serves spell a set alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class JobState(StrEnum):
    """Where a job is in its life."""

    #: waiting for a worker; due now
    AVAILABLE = "available"
    #: waiting for its ``eta``/``delay``
    SCHEDULED = "scheduled"
    #: claimed by a worker, under a lease
    EXECUTING = "executing"
    #: failed, waiting for its next attempt
    RETRYING = "retrying"
    #: finished without error
    COMPLETED = "completed"
    #: failed for good (retries used up, Fatal, unknown task, worker died)
    DEAD = "dead"
    #: revoked, expired or discarded before it could finish
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class HandBack(StrEnum):
    """What handing a running attempt back did (``JobsStore.hand_back``)."""

    #: back to ``available``, the attempt not used: it runs again
    HANDED_BACK = "handed back"
    #: its cancel had been asked while it ran: ``cancelled``, as asked, and it runs no more
    CANCELLED = "cancelled"
    #: nothing: the attempt no longer held the job (finished, or a later attempt runs)
    NOTHING = "nothing"

    def __str__(self) -> str:
        return self.value


class WorkerState(StrEnum):
    """Where a worker process is in its life (``runner_worker.state``)."""

    RUNNING = "running"
    STOPPED = "stopped"
    #: found gone by another worker's recovery pass
    DEAD = "dead"

    def __str__(self) -> str:
        return self.value


#: Every state, in the order listings show them.
ALL: tuple[JobState, ...] = tuple(JobState)
#: States a worker may claim from once ``run_at`` has passed.
WAITING = (JobState.AVAILABLE, JobState.SCHEDULED, JobState.RETRYING)
#: Waiting for a later ``run_at``.
FUTURE = (JobState.SCHEDULED, JobState.RETRYING)
#: Not finished: waiting or running.
LIVE = (*WAITING, JobState.EXECUTING)
#: States a job never leaves on its own.
FINAL = (JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED)
#: Jobs that failed at least their last attempt.
FAILED = (JobState.RETRYING, JobState.DEAD)
#: Finished without success (what retention keeps for ``dead_days``).
FINISHED_OK = (JobState.COMPLETED, JobState.CANCELLED)
#: Failed or stopped by hand: what a bulk retry takes when no state is named.
FAILED_OR_CANCELLED = (JobState.DEAD, JobState.RETRYING, JobState.CANCELLED)
#: What "retry now" accepts: anything not waiting for a worker nor running.
RETRYABLE = (JobState.DEAD, JobState.CANCELLED, JobState.RETRYING, JobState.COMPLETED)
#: What "discard" accepts: anything not running nor finished well.
DISCARDABLE = (JobState.AVAILABLE, JobState.SCHEDULED, JobState.RETRYING, JobState.DEAD)
#: What "cancel" accepts: jobs that have not started.
CANCELLABLE = WAITING


def sql_in(states: Iterable[str]) -> str:
    """``('a','b')``: a set of states as an SQL list (states are known words, never input)."""
    return "(" + ",".join(f"'{JobState(s).value}'" for s in states) + ")"


def sql_is(state: JobState | WorkerState) -> str:
    """``'executing'``: one state as an SQL literal."""
    return f"'{state.value}'"


#: ``WAITING`` as an SQL list; partial indexes and the queries they serve spell it alike.
WAITING_SQL = sql_in(WAITING)
#: Waiting or running: the states of a job that is not finished.
LIVE_SQL = sql_in(LIVE)
FINAL_SQL = sql_in(FINAL)
FAILED_SQL = sql_in(FAILED)
ALL_SQL = sql_in(ALL)
EXECUTING_SQL = sql_is(JobState.EXECUTING)
COMPLETED_SQL = sql_is(JobState.COMPLETED)
DEAD_SQL = sql_is(JobState.DEAD)
SCHEDULED_SQL = sql_is(JobState.SCHEDULED)
AVAILABLE_SQL = sql_is(JobState.AVAILABLE)
RETRYING_SQL = sql_is(JobState.RETRYING)
