"""Parked jobs: waiting jobs a concurrency limit holds back, kept out of the claim's way.

A claim under a task's concurrency limit, or a per-key one, passes over the
jobs that limit holds back. Left where they are, they are read again by every
claim: one key's 20,000 waiting jobs ahead of other keys' jobs cost each claim
a read of all 20,000. So a claim that passes over such a job *parks* it: it sets
``runner_job.parked`` to the group that holds it (:func:`task_group` or
:func:`key_group`), which takes it out of the claim indexes (their condition is
``parked IS NULL``) into an index of its own, by group, queue and priority.

Room, not time, lets parked jobs out. Triggers on ``runner_job`` (each SQL
backend's) record in ``runner_room`` every slot a group's limit may have gained:
a job of the task leaving ``executing`` (completed, failed, retried, cancelled,
handed back by lease recovery, deleted), or a waiting job of the task that a
claim could see leaving the waiting states without starting (cancelled,
discarded, deleted: it may be the one a slot was made for). The next claim of
any worker lets out, for each slot, the best job of each queue and level of
priority of the group (:func:`runner.flow.claim_order` ranks a group's jobs
among those heads, whatever the aging), so a parked job is claimable again
exactly when its limit may have room, in its place in the order. A job let out
that the limit still holds is parked again by the claim that reads it.

A parked job that leaves the waiting states (cancelled, discarded, deleted) is
parked no more, by a trigger: it may come back by hand, and no room would let it
out. One whose queue, priority or due time is changed by hand stays in its group,
which lets out its best jobs by those. No other path needs to know of parking. A worker starting
lets out every parked job (:meth:`release_parked`): its limits may be higher, or
gone, and a job parked under the old ones would wait for room it already has.
"""

from __future__ import annotations

#: The group of a job held back by its task's concurrency limit.
TASK_GROUP = "t"


def key_group(key: str) -> str:
    """The group of a job held back by its concurrency key's limit."""
    return "k" + key


#: Slots of a group let out per claim at most: a claim takes a few jobs, and a group with
#: more room gets more from the next claims.
MOST_SLOTS = 64
