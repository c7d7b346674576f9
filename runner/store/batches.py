"""Work done in short transactions, and the rules of writes by hand: the same for every backend.

Retention deletes and bulk actions run as many short steps (each one transaction
or one script of the backend's own) so that live workers are never held up;
here, with no SQL or driver, is when such a walk stops and what it adds up, and
what a replay by hand refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from runner.errors import InvalidAction
from runner.store.states import FINAL, sql_in


def delete_in_batches(delete: Callable[[], int], batch: int) -> int:
    """Run ``delete`` (one short step removing at most ``batch`` rows) until it removes
    fewer; returns how many went."""
    total = 0
    while True:
        deleted = delete()
        total += deleted
        if deleted < batch:
            return total


def prune_jobs_in_batches(prune: Callable[[], tuple[int, int]], batch: int) -> tuple[int, int]:
    """Run ``prune`` (one step deleting at most ``batch`` old jobs, answering the jobs and
    log records it deleted) until it deletes fewer jobs; returns both totals."""
    jobs = logs = 0
    while True:
        batch_jobs, batch_logs = prune()
        jobs, logs = jobs + int(batch_jobs), logs + int(batch_logs)
        if int(batch_jobs) < batch:
            return jobs, logs


def group_totals(parts: Iterable[tuple[int, int | None, float | None]]
                 ) -> tuple[int, int, float | None]:
    """A failure group's (jobs, highest row position, latest failure) from those of its
    index ranges (each read as ``count``, ``max`` and ``max``, NULL when empty)."""
    count, top, last = 0, 0, None
    for n, high, latest in parts:
        count, top = count + n, max(top, high or 0)
        if latest is not None and (last is None or latest > last):
            last = latest
    return count, top, last


def walk_bulk(step: Callable[[int], Sequence[int]]) -> int:
    """Run a bulk action's steps oldest first: ``step(after)`` acts on the next chunk past
    row number ``after`` and answers the row numbers it changed; returns how many."""
    total, last = 0, 0
    while True:
        rows = step(last)
        if not rows:
            return total
        total += len(rows)
        last = max(rows)


def bulk_condition(where: str, params: list[object],
                   states: Sequence[str]) -> tuple[str, list[object]]:
    """A filter's condition (``where``: empty, or `` WHERE ...``) narrowed to ``states``."""
    joined = f"state IN {sql_in(states)}"
    return (f"{where} AND {joined}" if where else f" WHERE {joined}"), params


def check_redispatch(event_id: str, dispatch_state: str | None) -> None:
    """Raises InvalidAction unless an event's dispatch job (in ``dispatch_state``) may run
    again: it is gone (pruned), or it is being dispatched now."""
    if dispatch_state is None:
        raise InvalidAction(f"event {event_id}: its dispatch job is gone (pruned); replay "
                            "it with `python -m runner events replay`")
    if dispatch_state not in FINAL:
        raise InvalidAction(f"event {event_id} is being dispatched now ({dispatch_state})")


def cancel_reason(by: str | None) -> str:
    """The reason a job cancelled by hand records: who asked (``user@host (cli)``), as a
    cancel by id names them whether the job waited or ran; None: "cancelled by hand"."""
    return f"cancelled by {by}" if by else "cancelled by hand"
