"""How SQLite statements and partial indexes spell "the job is waiting".

SQLite evaluates ``state IN ('available','scheduled','retrying')`` (a list of
more than two constants) by building a temporary B-tree of the list, once per
statement run: every inserted row pays it for each partial index whose
condition is such a list, and each row a trigger sees pays it again. The same
test written as comparisons costs a few instructions, so the partial indexes,
the triggers and every statement that must match an index's condition spell
it as below (SQLite uses a partial index only for a query that repeats its
condition word for word).
"""

from __future__ import annotations

from runner.store.states import FUTURE, WAITING


def waiting(column: str = "state") -> str:
    """``column`` holds a waiting state (a condition, parenthesized)."""
    return "(" + " OR ".join(f"{column} = '{s.value}'" for s in WAITING) + ")"


def not_waiting(column: str = "state") -> str:
    """``column`` holds any state but a waiting one (a condition, parenthesized)."""
    return "(" + " AND ".join(f"{column} <> '{s.value}'" for s in WAITING) + ")"


#: The condition of the partial indexes of waiting jobs (the claim indexes).
WAITING_WHERE = waiting()
#: The condition of the claim indexes: waiting jobs no concurrency limit parked
#: (runner.store.parking; the parked ones have indexes of their own).
CLAIMABLE_WHERE = f"{WAITING_WHERE} AND parked IS NULL"
#: The condition of the parked jobs' indexes. A parked job is waiting: every transition
#: out of the waiting states but the claim (which never takes a parked job) clears the
#: mark. No state in it: an update of a job's state then leaves these indexes alone.
PARKED_WHERE = "parked IS NOT NULL"
#: The condition of the partial indexes of jobs past waiting (running or finished).
NOT_WAITING = not_waiting()
#: The condition of the partial index of jobs waiting for a later time.
FUTURE_WHERE = "(" + " OR ".join(f"state = '{s.value}'" for s in FUTURE) + ")"


def holding(state: str) -> str:
    """The condition of the partial index that holds jobs in ``state`` (any but available)."""
    return FUTURE_WHERE if state in {s.value for s in FUTURE} else NOT_WAITING
