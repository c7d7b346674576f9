"""The job state machine: every write to ``runner_job``, one named transition each.

::

    enqueue, rearm ──> available | scheduled ──claim──> executing ──complete──> completed
                     ^                              │ ├─retry──> retrying ──(due)──> claim
                     │                              │ ├─bury───> dead
                     │                              │ ├─cancel_attempt──> cancelled
                     └──hand_back / unclaim / charge_crash (lease expired, worker gone)
    waiting ──cancel / discard──> cancelled     final ──retry_now──> available
    final (old) ──prune──> deleted

One module per part of the cycle: :mod:`.enqueue`, :mod:`.claim`,
:mod:`.outcomes` (of an attempt), :mod:`.recovery` (of a dead worker's jobs),
:mod:`.by_hand`, and :mod:`.parking` (waiting jobs a concurrency limit holds
back); callers import the package. Each function runs inside
the caller's write transaction (``Database.write``), so a caller can join a
transition with its other writes (an event with its dispatch job, a schedule
slot with its job). This package and :mod:`runner.store.states` are the only
places that spell a state; the hot statements (claim, complete, enqueue) are
tuned for SQLite and kept as written.
"""

from __future__ import annotations

from runner.store.rows import ClaimResult
from runner.store.sqlite.transitions.by_hand import (
    by_hand_in_bulk,
    cancel,
    cancel_waiting,
    change_picked,
    discard,
    prunable,
    prune,
    retry_now,
    settle_dispatch,
    state_of,
)
from runner.store.sqlite.transitions.claim import (
    bury_bad_run_at,
    claim,
    claim_rowids,
    extend_leases,
)
from runner.store.sqlite.transitions.enqueue import (
    _insert_many,
    check_room,
    drop_oldest,
    enqueue,
    insert_jobs,
    rearm,
)
from runner.store.sqlite.transitions.outcomes import (
    bury,
    cancel_attempt,
    complete,
    hand_back,
    holds,
    record_failure,
    release,
    retry,
    set_progress,
    unclaim,
    write_follow_ups,
)
from runner.store.sqlite.transitions.recovery import (
    Orphan,
    charge_crash,
    lease_owners,
    orphans,
    requeue_unstarted,
    running_attempt,
)

__all__ = [
    "ClaimResult", "Orphan", "_insert_many", "bury", "bury_bad_run_at", "by_hand_in_bulk",
    "cancel", "cancel_attempt", "cancel_waiting", "change_picked", "charge_crash",
    "check_room", "claim",
    "claim_rowids", "complete", "discard", "drop_oldest", "enqueue", "extend_leases",
    "hand_back", "holds", "insert_jobs", "lease_owners", "orphans", "prunable", "prune", "rearm",
    "record_failure", "release", "requeue_unstarted", "retry", "retry_now",
    "running_attempt", "set_progress", "settle_dispatch", "state_of", "unclaim",
    "write_follow_ups",
]
