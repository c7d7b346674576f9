"""What firing a schedule decides around each backend's own statements.

The SQL backends (``sqlite/schedules.py``, ``postgres/schedules.py``) claim a
schedule's slot by compare-and-set and run the writes; here, with no SQL: why
each planned slot is skipped, the walk over the slots (record each once,
enqueue the ones that run, a full queue skips), and what the schedule's row
records of the firing.
"""

from __future__ import annotations

from collections.abc import Callable

from runner.errors import QueueFull
from runner.store.job_rows import NewJob
from runner.store.schedule_rows import FirePlan, FireResult, unique_held


def slot_reasons(plan: FirePlan, skip_next: bool, waiting: int,
                 running: int) -> list[str | None]:
    """Why each planned slot is skipped (None: it runs). A batch is not checked against itself."""
    reasons: list[str | None] = [None] * len(plan.slots)
    first = 0
    if skip_next and reasons:
        reasons[0] = "skip-next requested"
        first = 1
    rest = range(first, len(reasons))
    if plan.overlap == "skip" and (waiting or running):
        why = "overlap: the previous run is still " + ("running" if running else "waiting")
        for i in rest:
            reasons[i] = why
    elif plan.overlap == "queue_one":
        for i in rest:
            if waiting:
                reasons[i] = "overlap: a run is already waiting (queue_one)"
            elif i != len(reasons) - 1:
                reasons[i] = "coalesced with a later slot (queue_one)"
    return reasons


def fire_slots(plan: FirePlan, result: FireResult, reasons: list[str | None], *,
               record: Callable[[float, NewJob, str | None], bool],
               enqueue: Callable[[NewJob], str | None],
               skip: Callable[[float, str], None]) -> str | None:
    """Walk the planned slots into ``result``; returns the last job enqueued.

    ``record(slot, job, reason)`` writes the slot's run record and answers False
    when the slot fired before (it never fires twice); ``enqueue(job)`` answers
    why the job was not written (its unique key is held: :func:`unique_held`) or
    None, and raises QueueFull at a full queue; ``skip(slot, reason)`` then
    rewrites the record.
    """
    last_job = None
    for slot, job, reason in zip(plan.slots, plan.jobs, reasons, strict=True):
        if not record(slot, job, reason):
            continue
        if reason is None:
            try:
                reason = enqueue(job)
            except QueueFull:
                reason = f"queue '{job.queue}' is full"
            if reason is not None:
                skip(slot, reason)
        if reason is None:
            result.enqueued.append((slot, job.id))
            last_job = job.id
        else:
            result.skipped.append((slot, reason))
    return last_job


def held_by(holder: str | None) -> str | None:
    """Why a scheduled run was not enqueued: ``holder``, the live job that holds its
    unique key, or None (it was)."""
    return None if holder is None else unique_held(holder)


def run_outcome(reason: str | None) -> str:
    """A slot's run record: enqueued, or why it was skipped."""
    return f"skipped: {reason}" if reason else "enqueued"


def fired_values(plan: FirePlan, result: FireResult, skip_next: bool,
                 last_job: str | None) -> tuple:
    """The values a firing records on the schedule's row, in the order of both
    backends' UPDATE: skip_next, last_slot_at, last_fired_at (the last slot, then
    the time: kept when no slot ran), last_lag, last_job_id, fired, skipped,
    last_skip_at (the reason, then the time: kept when none), last_skip_reason, name.

    A skip is dated by the firing when it befell the firing's last slot (or the firing
    had none), so the schedule's last outcome is that skip; a skip before a slot that
    ran (a missed slot dropped, one coalesced) is dated by the slot it skipped (the
    first missed one for drops), earlier than the firing, and the last outcome stays the
    run's."""
    skip_reason = result.skipped[-1][1] if result.skipped else None
    if plan.dropped and not skip_reason:
        skip_reason = f"{plan.dropped} missed slot(s) dropped by the misfire policy"
    last_slot = plan.slots[-1] if plan.slots else None
    skip_at = result.fired_at
    if result.enqueued and result.enqueued[-1][0] == last_slot:
        skip_at = result.skipped[-1][0] if result.skipped else plan.expected
    return (int(skip_next and not plan.slots), last_slot, last_slot, result.fired_at,
            None if last_slot is None else result.fired_at - last_slot, last_job,
            len(result.enqueued), len(result.skipped) + plan.dropped, skip_reason,
            skip_at, skip_reason, plan.name)
