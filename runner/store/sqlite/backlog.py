"""Reads of one queue's waiting jobs, through ``runner_job_queue_claim``.

That index orders a queue's waiting jobs by priority, then ``run_at``: the
count of a queue's backlog is a range of it, its oldest job is found level by
level of priority (one seek per level in use, not one per job), and the best
due jobs of some queues are the best of each queue's range, merged. A read
over several queues never goes through the index of every queue's jobs
(``runner_job_claim``) while other queues hold jobs: it would read theirs too.
Jobs a concurrency limit parked (:mod:`runner.store.parking`) are in
``runner_job_parked_queue``, of the same shape: a read of the whole backlog reads
both, a claim the first only.
"""

from __future__ import annotations

from runner.store.sqlite.conditions import CLAIMABLE_WHERE
from runner.store.sqlite.transitions.parking import QUEUE_PARKED

#: A queue's waiting jobs a claim may take, parked ones left out (the first parameter is
#: the queue).
QUEUE_WAITING = (f"runner_job INDEXED BY runner_job_queue_claim "
                 f"WHERE queue = ?1 AND {CLAIMABLE_WHERE}")


def _oldest(after: str, source: str = QUEUE_WAITING) -> str:
    return (f"WITH RECURSIVE level(p) AS (SELECT max(priority) FROM {source} "
            f"UNION ALL SELECT (SELECT max(priority) FROM {source} "
            f"AND priority < level.p) FROM level WHERE level.p IS NOT NULL) "
            f"SELECT min((SELECT min(run_at) FROM {source} AND priority = level.p"
            f"{after})) FROM level WHERE level.p IS NOT NULL")


#: The earliest ``run_at`` among a queue's waiting jobs, parked ones too: the oldest of
#: each level of priority, the levels found by seeks, so the cost follows the priorities
#: in use, never the backlog.
OLDEST_WAITING = (f"SELECT min(t) FROM (SELECT ({_oldest('')}) AS t "
                  f"UNION ALL SELECT ({_oldest('', QUEUE_PARKED)}))")
#: The earliest ``run_at`` after the second parameter among the jobs a claim may take (a
#: parked job was due when it was parked).
OLDEST_WAITING_AFTER = _oldest(" AND run_at > ?2")
#: The earliest and the latest ``run_at`` among a queue's claimable jobs, by seeks per
#: level (SQLite sorts a ``run_at`` that is not a number last: the latest shows it).
RUN_AT_EDGES = (
    f"WITH RECURSIVE level(p) AS (SELECT max(priority) FROM {QUEUE_WAITING} "
    f"UNION ALL SELECT (SELECT max(priority) FROM {QUEUE_WAITING} "
    f"AND priority < level.p) FROM level WHERE level.p IS NOT NULL) "
    f"SELECT min((SELECT min(run_at) FROM {QUEUE_WAITING} AND priority = level.p)), "
    f"max((SELECT max(run_at) FROM {QUEUE_WAITING} AND priority = level.p)) "
    f"FROM level WHERE level.p IS NOT NULL")


def best_due(count: int, condition: str = "") -> str:
    """The rowids of the best due jobs of ``count`` queues, best first: per queue a range
    of ``runner_job_queue_claim``, merged. Parameters, per queue: the queue, the time
    due by, those of ``condition`` (SQL over the queue's rows), the number wanted; then
    the number wanted of all."""
    one = (f"SELECT rowid, priority, run_at FROM runner_job INDEXED BY runner_job_queue_claim "
           f"WHERE {CLAIMABLE_WHERE} AND queue = ? AND run_at <= ?{condition} "
           f"ORDER BY priority DESC, run_at LIMIT ?")
    if count == 1:
        return f"SELECT rowid FROM ({one}) LIMIT ?"
    merged = " UNION ALL ".join([f"SELECT * FROM ({one})"] * count)
    return f"SELECT rowid FROM ({merged}) ORDER BY priority DESC, run_at LIMIT ?"
