"""The Failures screen's reads: grouped failed jobs, bounded on every backend by a cap of
the newest ones, and a signature that says when there are more."""

from __future__ import annotations

from tests.conformance.helpers import OWNER, T0, failure, job


def _fail(store, index: int, message: str, *, dead: bool) -> str:
    """A job written at ``T0 + index`` that fails with ``message``, dead or retrying."""
    new = job(T0 + index, max_attempts=3)
    store.enqueue([new], now=T0 + index)
    [claimed] = store.claim(now=T0 + index, owner=OWNER, lease_seconds=30, want=1).claimed
    assert claimed.id == new.id
    if dead:
        store.bury(new.id, 1, failure(message), worker=OWNER, now=T0 + index, reason="x")
    else:
        store.retry(new.id, 1, failure(message), worker=OWNER, now=T0 + index,
                    run_at=T0 + 86_400, reason="x")
    return new.id


def _groups(rows) -> dict:
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


def test_failure_groups_read_the_newest_failed_jobs_up_to_a_cap(store):
    # Given five failed jobs, written one after another: three dead of one error, two
    # retrying of another, the newest three being (oldest first) retrying, dead, retrying
    _fail(store, 1, "boom a", dead=True)
    _fail(store, 2, "boom a", dead=True)
    _fail(store, 3, "boom b", dead=False)
    _fail(store, 4, "boom a", dead=True)
    _fail(store, 5, "boom b", dead=False)

    # When the groups are read with room for every failed job, Then every one is counted
    assert _groups(store.failure_rows(cap=10)) == {
        ("ValueError", "boom a"): (3, 3, 0), ("ValueError", "boom b"): (2, 0, 2)}
    count, newest = store.failure_signature(cap=10)
    assert count == 5 and newest > 0

    # When the cap is below them, Then only the newest ones are grouped, and the
    # signature's count, read no further than one past the cap, says there are more
    assert _groups(store.failure_rows(cap=3)) == {
        ("ValueError", "boom a"): (1, 1, 0), ("ValueError", "boom b"): (2, 0, 2)}
    assert store.failure_signature(cap=3) == (4, newest)
    assert store.failure_signature(cap=5) == (5, newest)


def test_the_failure_signature_moves_when_a_failed_job_is_retried_or_fails(store):
    first = _fail(store, 1, "boom", dead=True)
    before = store.failure_signature(cap=10)
    _fail(store, 2, "boom", dead=True)
    after = store.failure_signature(cap=10)
    assert after[0] == before[0] + 1 and after[1] > before[1]
    assert store.retry_jobs([first], now=T0 + 3) == 1
    assert store.failure_signature(cap=10) == (after[0] - 1, after[1])
