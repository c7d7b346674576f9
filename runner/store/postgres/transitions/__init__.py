"""The job state machine in PostgreSQL's dialect: every write to ``runner_job``.

The same transitions, in the same states, as :mod:`runner.store.sqlite.transitions`
(see its diagram), in the same five modules (plus :mod:`.values`, the states as
the statements bind them); each function runs inside the caller's transaction. What
differs is how: a batch is one statement over arrays (``unnest``), a claim is
one ``UPDATE`` over a ``FOR UPDATE SKIP LOCKED`` pick, so workers on any number
of hosts never wait on each other's rows (the common claim, with the
completions it carries, is one statement of its own: :func:`claim_at_once`),
and jobs written by a worker's transitions notify the database's channel so
idle workers wake at once (a producer's enqueue has its wake-up sent after the
commit, see :mod:`runner.store.postgres.wakeup`).
"""

from __future__ import annotations

from runner.store.postgres.transitions.by_hand import (
    Prunable,
    by_hand_in_bulk,
    cancel,
    cancel_waiting,
    change_picked,
    prune,
    retry_now,
    settle_dispatch,
    state_of,
)
from runner.store.postgres.transitions.claim import (
    claim,
    claim_at_once,
    claims_at_once,
    extend_leases,
    paused_sets,
)
from runner.store.postgres.transitions.enqueue import (
    check_room,
    drop_oldest,
    enqueue,
    enqueue_new,
    notify,
    rearm,
)
from runner.store.postgres.transitions.outcomes import (
    cancel_attempt,
    complete,
    fail,
    hand_back,
    put_results,
    release,
    set_progress,
    unclaim,
    write_follow_ups,
)
from runner.store.postgres.transitions.recovery import (
    charge_crash,
    lease_owners,
    orphans,
    requeue_unstarted,
    running_attempt,
)
from runner.store.postgres.transitions.values import _EXECUTING

__all__ = [
    "Prunable", "_EXECUTING", "by_hand_in_bulk", "cancel", "cancel_attempt", "cancel_waiting",
    "change_picked",
    "charge_crash", "check_room", "claim", "claim_at_once", "claims_at_once", "complete",
    "drop_oldest", "enqueue", "enqueue_new", "extend_leases", "fail", "hand_back",
    "lease_owners", "notify", "orphans", "paused_sets", "prune", "put_results", "rearm",
    "release", "requeue_unstarted", "retry_now", "running_attempt", "set_progress",
    "settle_dispatch", "state_of", "unclaim", "write_follow_ups",
]
