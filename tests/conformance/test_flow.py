"""Flow control every backend enforces at claim: priority with aging, queue shares,
concurrency per queue, task and key, and rate limits as token buckets in the store."""

from __future__ import annotations

from collections import Counter

import pytest

from runner.flow import FlowLimits, Rate
from runner.store.backend import Store
from runner.store.job_rows import Ack
from runner.store.rows import JobFilter
from runner.store.states import JobState
from tests.conformance.helpers import OTHER, OWNER, T0, job

LEASE = 30.0


def claim(store: Store, limits: FlowLimits, now: float = T0, want: int = 10,
          owner: str = OWNER, queues: tuple[str, ...] = ()) -> list[str]:
    result = store.claim(now=now, owner=owner, lease_seconds=LEASE, want=want, queues=queues,
                         limits=limits)
    return [c.id for c in result.claimed]


def finish(store: Store, job_ids: list[str], at: float) -> None:
    store.complete([Ack(job_id, 1, at, at) for job_id in job_ids])


# -- priority and aging -----------------------------------------------------------------


def test_higher_priority_first_then_oldest_first_within_a_priority(store):
    old_low, new_low = job(T0 - 2, priority=0), job(T0 - 1, priority=0)
    old_high, new_high = job(T0 - 2, priority=5), job(T0 - 1, priority=5)
    store.enqueue([new_low, old_high, old_low, new_high], now=T0)
    got = claim(store, FlowLimits(aging=300), want=4)
    assert got == [old_high.id, new_high.id, old_low.id, new_low.id]


def test_a_long_waiting_low_priority_job_overtakes_fresh_higher_ones(store):
    # Due for 3 aging periods: priority 0 counts as 3, above a fresh 2, below a fresh 4.
    starved = job(T0 - 3 * 60, priority=0)
    two, four = job(T0, priority=2), job(T0, priority=4)
    store.enqueue([two, four, starved], now=T0 - 3 * 60)
    assert claim(store, FlowLimits(aging=60), want=3) == [four.id, starved.id, two.id]


@pytest.mark.parametrize("limits", [
    FlowLimits(aging=60),  # aging alone: no limit can bind
    FlowLimits(aging=60, queue_concurrency={"default": 100}),  # a cap far from binding
    FlowLimits(aging=60, weights={"default": 2, "other": 1}),  # queue shares
], ids=["aging-only", "with-a-cap", "with-shares"])
def test_aging_orders_the_claim_alike_with_or_without_other_limits(store, limits):
    starved = job(T0 - 3 * 60, priority=0)
    older_starved = job(T0 - 4 * 60, priority=0)
    two, four, five = job(T0, priority=2), job(T0, priority=4), job(T0 - 60, priority=4)
    store.enqueue([two, four, five, starved, older_starved], now=T0 - 4 * 60)
    # Effective priorities: five 5, four 4, older_starved 4 (due longer), starved 3, two 2.
    assert claim(store, limits, want=5) == [five.id, older_starved.id, four.id, starved.id,
                                           two.id]


@pytest.mark.parametrize("limits", [
    FlowLimits(aging=60),
    FlowLimits(aging=60, queue_concurrency={"default": 100}),
    FlowLimits(aging=60, weights={"default": 2, "other": 1}),
], ids=["aging-only", "with-a-cap", "with-shares"])
def test_aging_lifts_a_job_above_any_number_of_busier_levels_of_priority(store, limits):
    # Forty levels of fresh jobs above a priority-0 job due for 50 aging periods: it
    # counts as priority 50, so it comes first, then the levels from the top.
    starved = job(T0 - 50 * 60, priority=0)
    fresh = [job(T0, priority=p) for p in range(40, 0, -1) for _ in range(2)]
    store.enqueue([*fresh, starved], now=T0 - 50 * 60)
    assert claim(store, limits, want=3) == [starved.id, fresh[0].id, fresh[1].id]


def test_without_aging_the_low_priority_job_keeps_waiting(store):
    starved = job(T0 - 3600, priority=0)
    fresh = job(T0, priority=1)
    store.enqueue([starved, fresh], now=T0 - 3600)
    assert claim(store, FlowLimits(aging=0, queue_concurrency={"x": 5}), want=1) == [fresh.id]


def test_a_job_not_yet_due_is_never_claimed_early(store):
    later = job(T0 + 10, priority=9)
    store.enqueue([later], now=T0)
    result = store.claim(now=T0, owner=OWNER, lease_seconds=LEASE, want=5,
                         limits=FlowLimits(aging=1, queue_concurrency={"default": 5}))
    assert result.claimed == [] and result.next_due == T0 + 10


# -- queue shares ------------------------------------------------------------------------


def test_claims_are_shared_between_queues_by_weight(store):
    store.enqueue([job(queue="bulk") for _ in range(40)]
                  + [job(queue="mail") for _ in range(40)], now=T0)
    limits = FlowLimits(weights={"bulk": 1, "mail": 3})
    rows = {}
    for n in range(10):  # small claims from two workers: the shares hold across them
        for job_id in claim(store, limits, want=2, owner=OWNER if n % 2 else OTHER):
            rows[job_id] = store.get_job(job_id).queue
    assert Counter(rows.values()) == {"mail": 15, "bulk": 5}


def test_claims_taken_ahead_keep_the_shares_over_consecutive_claims(store):
    # A worker of short jobs claims many ahead: a backend may take each claim's share in
    # runs of one queue, but over the claims each queue gets its weight's share.
    store.enqueue([job(T0 - 200 + n * 0.1, queue="ab"[n % 2]) for n in range(400)], now=T0)
    limits = FlowLimits(weights={"a": 3, "b": 1})
    taken = Counter()
    for _ in range(10):
        result = store.claim(now=T0, owner=OWNER, lease_seconds=LEASE, want=16, limits=limits,
                             ahead=True)
        taken.update(result.labels[c.id][1] for c in result.claimed)
    assert sum(taken.values()) == 160
    assert abs(taken["a"] - 120) <= 16 and abs(taken["b"] - 40) <= 16, taken


def test_a_queue_without_work_does_not_hold_back_the_others(store):
    store.enqueue([job(queue="bulk") for _ in range(6)], now=T0)
    limits = FlowLimits(weights={"bulk": 1, "mail": 9})
    assert len(claim(store, limits, want=6)) == 6


def test_queues_with_nothing_due_take_no_turns_from_the_others(store):
    # Twenty queues holding only jobs due later: a and b still share 3 to 1 in every claim.
    later = [f"later{n:02d}" for n in range(20)]
    store.enqueue([job(T0 + 3600, queue=q) for q in later]
                  + [job(T0 - 100 + n * 0.01, queue="ab"[n % 2]) for n in range(200)], now=T0)
    limits = FlowLimits(weights={"a": 3, "b": 1, **{q: 2 for q in later}})
    for _ in range(8):
        got = Counter(store.get_job(j).queue for j in claim(store, limits, want=4))
        assert got == {"a": 3, "b": 1}


def test_a_queue_whose_jobs_come_due_takes_its_share_and_no_more(store):
    # c waits for its jobs to come due while a and b run (beside ten queues whose jobs
    # are due much later, cancelled meanwhile): it saves up no turns.
    later = [job(T0 + 3600, queue=f"later{n:02d}") for n in range(10)]
    store.enqueue([job(T0 + 50, queue="c") for _ in range(30)] + later
                  + [job(T0 - 100 + n * 0.01, queue="ab"[n % 2]) for n in range(200)], now=T0)
    limits = FlowLimits(weights={"a": 1, "b": 1, "c": 1})
    for _ in range(10):
        claim(store, limits, want=3)
    store.cancel_jobs([j.id for j in later], now=T0 + 1)
    for _ in range(5):
        got = Counter(store.get_job(j).queue for j in claim(store, limits, T0 + 60, want=3))
        assert got == {"a": 1, "b": 1, "c": 1}


def test_priority_orders_jobs_within_a_shared_queue(store):
    low, high = job(queue="mail", priority=0), job(queue="mail", priority=3)
    store.enqueue([low, high, job(queue="bulk")], now=T0)
    got = claim(store, FlowLimits(weights={"mail": 5, "bulk": 1}), want=3)
    assert got.index(high.id) < got.index(low.id)


# -- concurrency -------------------------------------------------------------------------


def test_a_task_limited_to_one_never_runs_twice_at_once_across_workers(store, another):
    store.enqueue([job(task="report") for _ in range(3)] + [job(task="other")], now=T0)
    limits = FlowLimits(task_concurrency={"report": 1})
    first = claim(store, limits)
    assert sorted(store.get_job(j).task for j in first) == ["other", "report"]
    second = another()
    assert claim(second, limits, owner=OTHER) == []  # the report job runs on the first worker
    running = [j for j in first if store.get_job(j).task == "report"]
    finish(store, running, T0 + 1)
    [next_report] = claim(second, limits, now=T0 + 1, owner=OTHER)
    assert store.get_job(next_report).task == "report"


def test_a_job_over_its_limit_waits_with_no_attempt_spent(store):
    held = [job(task="report") for _ in range(2)]
    store.enqueue(held, now=T0)
    limits = FlowLimits(task_concurrency={"report": 1})
    [running] = claim(store, limits)
    waiting = next(j for j in held if j.id != running)
    for _ in range(3):
        assert claim(store, limits) == []
    row = store.get_job(waiting.id)
    assert (row.state, row.attempt) == (JobState.AVAILABLE, 0)


def test_per_key_concurrency_runs_one_job_per_key(store):
    jobs = [job(task="sync", concurrency_key=f"user-{n % 3}") for n in range(9)]
    store.enqueue(jobs, now=T0)
    limits = FlowLimits(key_concurrency={"sync": 1})
    first = claim(store, limits)
    keys = {j.id: j.concurrency_key for j in jobs}
    assert sorted(keys[j] for j in first) == ["user-0", "user-1", "user-2"]
    finish(store, [j for j in first if keys[j] == "user-1"], T0 + 1)
    assert [keys[j] for j in claim(store, limits, now=T0 + 1)] == ["user-1"]


def test_two_keys_of_one_task_run_at_once_on_two_workers(store, another):
    first, second = job(task="sync", concurrency_key="u1"), job(task="sync", concurrency_key="u1")
    other = job(task="sync", concurrency_key="u2")
    store.enqueue([first, second, other], now=T0)
    limits = FlowLimits(key_concurrency={"sync": 1})
    assert claim(store, limits, want=1) == [first.id]
    assert claim(another(), limits, owner=OTHER) == [other.id]  # u1's second job waits
    running = store.list_jobs(JobFilter(state=JobState.EXECUTING))
    assert sorted(r.id for r in running) == sorted([first.id, other.id])


def test_the_same_key_of_another_task_is_not_held(store):
    a, b = job(task="sync", concurrency_key="u1"), job(task="mail", concurrency_key="u1")
    store.enqueue([a, job(task="sync", concurrency_key="u1")], now=T0)
    limits = FlowLimits(key_concurrency={"sync": 1, "mail": 1})
    assert claim(store, limits) == [a.id]
    store.enqueue([b], now=T0)
    assert claim(store, limits) == [b.id]


def test_queue_concurrency_counts_every_worker(store, another):
    video = [job(queue="video") for _ in range(5)]
    mail = job(queue="mail")
    store.enqueue([*video, mail], now=T0)
    limits = FlowLimits(queue_concurrency={"video": 2})
    assert len(claim(store, limits, want=1, queues=("video",))) == 1
    assert len(claim(another(), limits, owner=OTHER)) == 2  # one video, and the mail job
    running = store.list_jobs(JobFilter(state=JobState.EXECUTING))
    assert Counter(r.queue for r in running) == {"video": 2, "mail": 1}


def test_a_cap_holds_across_claims_that_each_stay_below_it(store, another):
    # Claims far from a cap need not count what runs by queue, task and key; the claim
    # that could reach it must, whichever worker made the earlier ones.
    store.enqueue([job(queue="video", task="tests.jobs.slow") for _ in range(16)], now=T0)
    for limits in (FlowLimits(queue_concurrency={"video": 5}),
                   FlowLimits(task_concurrency={"tests.jobs.slow": 5})):
        assert len(claim(store, limits, want=2)) == 2
        assert len(claim(another(), limits, want=2, owner=OTHER)) == 2
        assert len(claim(store, limits, want=2)) == 1  # 4 run: one more reaches the cap
        assert claim(another(), limits, want=2, owner=OTHER) == []
        running = store.list_jobs(JobFilter(state=JobState.EXECUTING))
        finish(store, [r.id for r in running], T0 + 1)


# -- rate limits -------------------------------------------------------------------------


def test_a_rate_limit_starts_jobs_at_its_rate_and_says_when_the_next_token_is(store):
    store.enqueue([job(task="api") for _ in range(10)], now=T0)
    limits = FlowLimits(task_rates={"api": Rate(5, 1.0, burst=2)})  # 5/s, 2 back to back
    assert len(claim(store, limits)) == 2
    result = store.claim(now=T0 + 0.1, owner=OWNER, lease_seconds=LEASE, want=1,
                         limits=limits)
    assert result.claimed == []
    assert abs(result.next_due - (T0 + 0.2)) < 1e-6  # one token per 0.2 s
    result = store.claim(now=T0 + 0.1, owner=OWNER, lease_seconds=LEASE, want=10,
                         limits=limits)
    assert abs(result.next_due - (T0 + 0.4)) < 1e-6  # wanting more: the burst's worth
    assert len(claim(store, limits, now=T0 + 0.2)) == 1
    assert len(claim(store, limits, now=T0 + 0.6)) == 2  # the bucket holds at most 2


def test_rate_limited_starts_over_time_match_the_rate(store, another):
    store.enqueue([job(queue="api") for _ in range(300)], now=T0)
    limits = FlowLimits(queue_rates={"api": Rate(20, 1.0)})
    handles = [store, another()]
    started = 0
    for step in range(501):  # two workers polling every 10 ms for 5 s
        started += len(claim(handles[step % 2], limits, now=T0 + step * 0.01,
                             owner=OWNER if step % 2 else OTHER))
    assert started == 101  # the first token at once, then 20 a second
    waiting = store.list_jobs(JobFilter(state=JobState.AVAILABLE), limit=1000)
    assert len(waiting) == 199 and all(r.attempt == 0 for r in waiting)


def test_jobs_held_by_a_rate_limit_spend_no_attempt(store):
    jobs = [job(task="api") for _ in range(3)]
    store.enqueue(jobs, now=T0)
    limits = FlowLimits(task_rates={"api": Rate(1, 60.0)})
    [first] = claim(store, limits)
    for n in range(5):
        assert claim(store, limits, now=T0 + n) == []
    assert sorted(store.get_job(j.id).attempt for j in jobs) == [0, 0, 1]
    assert store.get_job(first).state == JobState.EXECUTING


def test_a_held_back_backlog_does_not_crowd_out_the_jobs_behind_it(store):
    backlog = [job(T0 - 100 + n, task="report") for n in range(50)]
    behind = [job(T0, task="mail") for _ in range(4)]
    store.enqueue([*backlog, *behind], now=T0 - 100)
    limits = FlowLimits(task_concurrency={"report": 1})
    got = claim(store, limits, want=5)
    assert got == [backlog[0].id, *[j.id for j in behind]]
    assert claim(store, limits, want=5) == []  # and again with the report slot taken


def test_a_rate_limited_queue_does_not_hold_back_other_queues(store):
    store.enqueue([job(T0 - 10, queue="api") for _ in range(30)]
                  + [job(T0, queue="mail") for _ in range(3)], now=T0 - 10)
    limits = FlowLimits(queue_rates={"api": Rate(1, 1.0)}, weights={"api": 5, "mail": 1})
    got = [store.get_job(j).queue for j in claim(store, limits, want=10)]
    assert Counter(got) == {"api": 1, "mail": 3}


#: More held-back jobs than a claim once read past (Redis read 5,000 per queue and level).
BACKLOG = 6_000
HOLDS = {
    "task-concurrency": FlowLimits(task_concurrency={"report": 1}),
    "key-concurrency": FlowLimits(key_concurrency={"report": 1}),
    "task-rate": FlowLimits(task_rates={"report": Rate(1, 3600.0)}),
}


def claim_as_told(store: Store, limits: FlowLimits | None, now: float = T0,
                  want: int = 5) -> list[str]:
    """Claim as a worker does: again at once while the store says to look again now."""
    for _ in range(5):
        result = store.claim(now=now, owner=OWNER, lease_seconds=LEASE, want=want,
                             limits=limits)
        if result.claimed or result.next_due is None or result.next_due > now:
            break
    return [c.id for c in result.claimed]


@pytest.mark.parametrize("hold", [*HOLDS, "task-paused"])
def test_a_job_behind_thousands_of_held_back_ones_is_claimed(store, hold):
    backlog = [job(T0 - 100 + n * 0.001, task="report", concurrency_key="k")
               for n in range(BACKLOG)]
    behind = job(T0, task="mail")
    store.enqueue([*backlog, behind], now=T0)
    limits = HOLDS.get(hold)
    if limits is None:  # the task is paused, and no limit applies
        store.set_pause("task", "report", True, now=T0)
        assert claim_as_told(store, limits) == [behind.id]
        store.set_pause("task", "report", False, now=T0 + 1)
        assert claim_as_told(store, limits, T0 + 1, want=2) == [j.id for j in backlog[:2]]
        return
    assert claim(store, limits, want=1) == [backlog[0].id]  # the limit is now reached
    assert claim_as_told(store, limits) == [behind.id]
    assert claim_as_told(store, limits) == []
    finish(store, [backlog[0].id], T0 + 1)
    later = T0 + 3600 if hold == "task-rate" else T0 + 1
    assert claim_as_told(store, limits, later) == [backlog[1].id]  # in order, when it frees
