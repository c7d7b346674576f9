"""Reads of one queue's waiting jobs, through ``runner_job_queue_claim``.

That index orders a queue's waiting jobs by priority, then ``run_at``: the
count of a queue's backlog is a range of it, and its oldest job is found
level by level of priority (one seek per level in use, not one per job).
"""

from __future__ import annotations

from runner.store.sqlite.conditions import WAITING_WHERE

#: A queue's waiting jobs (the first parameter is the queue).
QUEUE_WAITING = (f"runner_job INDEXED BY runner_job_queue_claim "
                 f"WHERE queue = ?1 AND {WAITING_WHERE}")


def _oldest(after: str) -> str:
    return (f"WITH RECURSIVE level(p) AS (SELECT max(priority) FROM {QUEUE_WAITING} "
            f"UNION ALL SELECT (SELECT max(priority) FROM {QUEUE_WAITING} "
            f"AND priority < level.p) FROM level WHERE level.p IS NOT NULL) "
            f"SELECT min((SELECT min(run_at) FROM {QUEUE_WAITING} AND priority = level.p"
            f"{after})) FROM level WHERE level.p IS NOT NULL")


#: The earliest ``run_at`` among a queue's waiting jobs: the oldest of each level of
#: priority, the levels found by seeks, so the cost follows the priorities in use,
#: never the backlog.
OLDEST_WAITING = _oldest("")
#: The same among those due after the second parameter.
OLDEST_WAITING_AFTER = _oldest(" AND run_at > ?2")
