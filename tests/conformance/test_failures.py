"""The Failures screen's reads: grouped failed jobs, bounded on every backend by a cap of
the newest ones, and a signature that says when there are more."""

from __future__ import annotations

from runner import control
from runner.readmodel import failures
from runner.readmodel.dashboard import count_jobs_capped, job_page
from runner.service_sections import RetentionSection
from runner.store.job_rows import FailureInfo
from runner.store.rows import JobFilter
from tests.conformance.helpers import OWNER, T0, failure, job


def _fail(store, index: int, message: str, *, dead: bool, task: str = "tests.jobs.add",
          error_type: str = "ValueError") -> str:
    """A job of ``task`` written at ``T0 + index`` that fails with ``message``, dead or
    retrying."""
    new = job(T0 + index, max_attempts=3, task=task)
    store.enqueue([new], now=T0 + index)
    [claimed] = store.claim(now=T0 + index, owner=OWNER, lease_seconds=30, want=1).claimed
    assert claimed.id == new.id
    info = failure(message)
    if error_type != info.error_type:
        info = FailureInfo(info.kind, error_type, message, info.traceback)
    if dead:
        store.bury(new.id, 1, info, worker=OWNER, now=T0 + index, reason="x")
    else:
        store.retry(new.id, 1, info, worker=OWNER, now=T0 + index,
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


def test_a_failure_group_names_its_tasks_in_name_order_on_every_backend(store):
    # Given failed jobs of one error from five tasks, written in no order of their names,
    # two of them in a group's second message of the same shape
    for index, name in enumerate(["send", "bill", "sync", "audit", "mail"]):
        _fail(store, index, f"down host:{index % 2}", dead=index % 2 == 0,
              task=f"tests.jobs.{name}")
    # When the groups are read, Then the group names its first three tasks by name,
    # whichever order the jobs were written or read in, and counts the others
    [group] = failures.failure_groups(store)
    assert group.tasks == "tests.jobs.audit, tests.jobs.bill, tests.jobs.mail +2"


def test_the_failure_signature_moves_when_a_failed_job_is_retried_or_fails(store):
    first = _fail(store, 1, "boom", dead=True)
    before = store.failure_signature(cap=10)
    _fail(store, 2, "boom", dead=True)
    after = store.failure_signature(cap=10)
    assert after[0] == before[0] + 1 and after[1] > before[1]
    assert store.retry_jobs([first], now=T0 + 3) == 1
    assert store.failure_signature(cap=10) == (after[0] - 1, after[1])


def test_a_group_action_reaches_every_failed_job_of_the_group_past_the_cap(store):
    # Given seven failed jobs of one message shape ("down host:1" ... "host:7"), dead and
    # retrying, and two newer ones of another message
    shaped = [_fail(store, i, f"down host:{i}", dead=i % 2 == 1) for i in range(1, 8)]
    others = [_fail(store, 8 + i, "boom", dead=True) for i in range(2)]
    # When the screen groups only the newest three, the group shows one message of seven
    [group] = [g for g in failures.failure_groups(store, cap=3) if g.message != "boom"]
    assert (group.message, group.count) == ("down host:7", 1)
    # Then the group's messages are every one of its shape, found past the cap
    messages = failures.group_messages(store, group.error_type, group.message)
    assert sorted(messages) == [f"down host:{i}" for i in range(1, 8)]
    plan = control.plan_failure_group(store, "retry", group.error_type, messages)
    assert plan.count == 7
    # And a job failing the same way after the count is left alone
    late = _fail(store, 20, "down host:3", dead=True)
    assert control.run_failure_group(store, plan, now=T0 + 30, chunk=2) == 7
    assert {store.get_job(i).state for i in shaped} == {"available"}
    assert [store.get_job(i).state for i in (late, *others)] == ["dead", "dead", "dead"]


def test_a_group_discard_takes_every_failed_job_of_one_exact_message(store):
    # Given five dead and retrying jobs of one message, one of a message of the same
    # shape, and one of another error message
    same = [_fail(store, i, "refused by db-7", dead=i % 2 == 0) for i in range(5)]
    sibling = _fail(store, 6, "refused by db-8", dead=True)
    other = _fail(store, 7, "boom", dead=False)
    # When one exact message is discarded (an expanded group's row), in chunks of two
    plan = control.plan_failure_group(store, "discard", "ValueError", ["refused by db-7"])
    assert plan.count == 5
    assert control.run_failure_group(store, plan, now=T0 + 30, chunk=2) == 5
    # Then exactly its jobs are discarded, and the failure groups no longer have them
    assert {store.get_job(i).state for i in same} == {"cancelled"}
    assert [store.get_job(i).state for i in (sibling, other)] == ["dead", "retrying"]
    assert _groups(store.failure_rows(cap=10)) == {
        ("ValueError", "refused by db-8"): (1, 1, 0), ("ValueError", "boom"): (1, 0, 1)}
    # And an empty group plans nothing
    assert control.plan_failure_group(store, "retry", "ValueError", ["refused by db-7"]).count == 0


def test_a_group_counts_no_job_pruned_by_retention_or_sent_again_by_its_id(store):
    # Given four dead jobs and one retrying job of one error
    old = [_fail(store, i, "gone away", dead=True) for i in range(2)]
    recent = [_fail(store, 10 + i, "gone away", dead=True) for i in range(2)]
    retrying = _fail(store, 20, "gone away", dead=False)
    # When retention prunes the two old dead jobs, and one recent one is enqueued again
    # under its id (huey sending a task a second time)
    day = 86400.0
    section = RetentionSection(completed_days=1, dead_days=1, vacuum=False)
    store.prune_retention(section, now=T0 + day + 5)
    assert not {r.id for r in store.list_jobs(JobFilter(), limit=20)} & set(old)
    assert store.rearm(job(T0 + day, job_id=recent[0]), now=T0 + day)
    assert store.get_job(recent[0]).state == "available"
    # Then the group is the two jobs still failed, and its action takes just them
    assert sorted(store.failure_messages("ValueError")) == ["gone away"]
    plan = control.plan_failure_group(store, "discard", "ValueError", ["gone away"])
    assert plan.count == 2
    assert control.run_failure_group(store, plan, now=T0 + day + 10) == 2
    assert [store.get_job(i).state for i in (recent[1], retrying)] == ["cancelled"] * 2
    assert store.get_job(recent[0]).state == "available"
    assert store.failure_messages("ValueError") == []


def test_a_filter_by_one_error_lists_and_acts_on_exactly_the_jobs_of_that_message(store):
    # Given jobs failing with "bad input 1", with messages that contain it ("bad input 12"),
    # with the same message under another error type, and a job that never failed
    mine = [_fail(store, i, "bad input 1", dead=i != 1) for i in range(3)]
    longer = _fail(store, 3, "bad input 12", dead=True)
    other_type = _fail(store, 4, "bad input 1", dead=True, error_type="KeyError")
    fine = job(T0 + 5)
    store.enqueue([fine], now=T0 + 5)
    exact = JobFilter(state="failed", error=("ValueError", "bad input 1"))
    # When the jobs of that error are listed and counted, Then they are exactly its own
    assert {r.id for r in job_page(store, exact, limit=20).jobs} == set(mine)
    assert {r.id for r in store.list_jobs(exact, limit=20)} == set(mine)
    assert count_jobs_capped(store, exact) == (3, False)
    # And a bulk retry of that filter counts and changes just them
    plan = control.plan_bulk(store, "retry", exact)
    assert plan.count == 3
    assert control.run_bulk(store, plan, now=T0 + 30) == 3
    assert {store.get_job(i).state for i in mine} == {"available"}
    assert [store.get_job(i).state for i in (longer, other_type, fine.id)] == [
        "dead", "dead", "available"]
    # And the other error type's job is its own filter
    assert [r.id for r in store.list_jobs(
        JobFilter(error=("KeyError", "bad input 1")), limit=20)] == [other_type]
