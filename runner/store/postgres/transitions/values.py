"""The states as the statements of the transitions bind or spell them."""

from __future__ import annotations

from runner.store.states import FINAL, WAITING, WAITING_SQL, JobState

_AVAILABLE = JobState.AVAILABLE.value
_SCHEDULED = JobState.SCHEDULED.value
_EXECUTING = JobState.EXECUTING.value
_COMPLETED = JobState.COMPLETED.value
_CANCELLED = JobState.CANCELLED.value
_DEAD = JobState.DEAD.value
_WAITING = [s.value for s in WAITING]
_FINAL = [s.value for s in FINAL]
_LIVE = [s.value for s in (*WAITING, JobState.EXECUTING)]
#: The waiting states as literals: a prepared statement's generic plan can then use the
#: partial indexes on them (a parameter matches no index predicate), so the common
#: claim is planned once per connection instead of on every call.
_WAITING_IN = WAITING_SQL
#: The times a waiting job keeps when it is cancelled or discarded (one ``%s``: now): see
#: runner.store.sqlite.transitions.by_hand.CANCEL_TIMES.
CANCEL_TIMES = ("started_at = CASE WHEN finished_at IS NULL THEN NULL ELSE started_at END, "
                "finished_at = coalesce(finished_at, %s)")
