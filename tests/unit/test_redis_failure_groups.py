"""Redis: a failure group's lookup and action read that group, never every failed job."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner import control
from runner.readmodel import failures
from runner.store.redis import RedisStore, job_index
from tests.conformance.helpers import OWNER, T0, failure, job
from tests.redis_support import commands_run, failure_group_members, fresh_store, own_store


@pytest.fixture
def store() -> Iterator[RedisStore]:
    with fresh_store() as opened:
        yield opened


def fail(store: RedisStore, count: int, message: str, *, at: float = T0) -> list[str]:
    """``count`` jobs that fail with ``message``, every other one dead, the rest retrying."""
    new = [job(at, max_attempts=3) for _ in range(count)]
    store.enqueue(new, now=at)
    claimed = store.claim(now=at, owner=OWNER, lease_seconds=30, want=count).claimed
    assert {c.id for c in claimed} == {n.id for n in new}
    for n, c in enumerate(claimed):
        if n % 2:
            store.retry(c.id, c.attempt, failure(message), worker=OWNER, now=at,
                        run_at=at + 86_400, reason="x")
        else:
            store.bury(c.id, c.attempt, failure(message), worker=OWNER, now=at, reason="x")
    return [n.id for n in new]


def test_a_group_lookup_and_action_cost_the_same_however_many_other_jobs_failed(tmp_path):
    with own_store(tmp_path / "redis") as store:
        def cost_of_a_small_group(label: str) -> tuple[int, int]:
            """Commands to look up and to retry a group of four failed jobs."""
            ids = fail(store, 4, f"rare {label}")
            before = commands_run(store)
            messages = failures.group_messages(store, "ValueError", f"rare {label}")
            plan = control.plan_failure_group(store, "retry", "ValueError", messages)
            assert plan.count == 4
            looked_up = commands_run(store)
            assert control.run_failure_group(store, plan, now=T0 + 60) == 4
            done = commands_run(store)
            assert {store.get_job(i).state for i in ids} == {"available"}
            return looked_up - before, done - looked_up

        fail(store, 100, "common")
        cost_of_a_small_group("warm-up")  # the first lookup marks the groups complete
        few = cost_of_a_small_group("a")
        fail(store, 400, "common")
        many = cost_of_a_small_group("b")
        # Then five times the failed jobs cost not one command more
        assert many == few, (few, many)
        assert few[0] < 20


def test_failure_groups_of_an_earlier_release_are_indexed_at_the_first_lookup(store,
                                                                             monkeypatch):
    monkeypatch.setattr(job_index, "_INDEX_STEP", 2)  # indexed in several steps
    # Given failed jobs an earlier release wrote (no failure groups kept)
    timeouts = fail(store, 5, "timed out after 3s")
    others = fail(store, 3, "timed out after 30s")
    refused = fail(store, 2, "refused")
    gone = [k for pattern in ("fgroup:*", "fmsgs:*", "fgindexed")
            for k in store.r.scan_iter(match=store.k(pattern))]
    assert len(gone) == 4  # three groups, one error type (no lookup marked them yet)
    store.r.delete(*gone)
    # When a group is looked up, Then every failed job is found in it
    assert sorted(failures.group_messages(store, "ValueError", "timed out after 3s")) == [
        "timed out after 30s", "timed out after 3s"]
    assert sorted(failure_group_members(store, "ValueError", "timed out after 3s")) == sorted(
        timeouts)
    assert store.r.exists(store.k("fgindexed"))
    plan = control.plan_failure_group(store, "discard", "ValueError",
                                      ["timed out after 3s", "timed out after 30s"])
    assert plan.count == 8
    assert control.run_failure_group(store, plan, now=T0 + 60, chunk=3) == 8
    assert {store.get_job(i).state for i in timeouts + others} == {"cancelled"}
    assert {store.get_job(i).state for i in refused} == {"dead", "retrying"}
    # And the groups left are those still failed
    assert store.failure_messages("ValueError") == ["refused"]
