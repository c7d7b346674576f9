"""Flow control every backend provides: queue bounds (on_full), unique jobs, pause, cancel.

Producers race through separate handles on the same data (as separate
processes would), so a bound or a unique key that is checked outside the
write step shows up here as one job too many.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from runner.errors import QueueFull
from runner.flow import FlowLimits
from runner.store.backend import Store
from runner.store.job_rows import Ack, QueueBound
from runner.store.rows import JobFilter
from runner.store.states import HandBack, JobState
from tests.conformance.helpers import OWNER, T0, failure, job

PRODUCERS = 8


def race(another: Callable[[], Store], work: Callable[[Store, int], None]) -> None:
    """Run ``work(handle, n)`` in PRODUCERS threads at once, each on its own handle."""
    handles = [another() for _ in range(PRODUCERS)]
    start = threading.Barrier(PRODUCERS)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        start.wait()
        try:
            work(handles[n], n)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(PRODUCERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def waiting(store: Store, queue: str) -> int:
    return store.count_jobs(JobFilter(queue=queue, state="waiting"))


# -- on_full -----------------------------------------------------------------------------


def test_reject_never_lets_eight_producers_past_the_bound(store, another):
    bound = {"mail": QueueBound(10, "reject")}
    store.enqueue([job(queue="mail") for _ in range(5)], now=T0, bounds=bound)
    written: list[int] = []

    def produce(handle: Store, n: int) -> None:
        for _ in range(3):
            try:
                handle.enqueue([job(queue="mail")], now=T0, bounds=bound)
                written.append(n)
            except QueueFull as exc:
                assert exc.queue == "mail"

    race(another, produce)
    assert len(written) == 5
    assert waiting(store, "mail") == 10 and store.count_jobs() == 10
    assert store.backpressure_totals()["mail"] == (PRODUCERS * 3 - 5, 0)


def test_block_refuses_without_counting_and_says_how_much_room_is_left(store):
    bound = {"mail": QueueBound(4, "block")}
    store.enqueue([job(queue="mail") for _ in range(3)], now=T0, bounds=bound)
    with pytest.raises(QueueFull) as raised:
        store.enqueue([job(queue="mail"), job(queue="mail")], now=T0, bounds=bound)
    assert (raised.value.queue, raised.value.room) == ("mail", 1)
    assert store.count_jobs() == 3
    assert store.backpressure_totals().get("mail", (0, 0)) == (0, 0)


def test_a_full_queue_is_told_the_same_way_on_every_backend(store):
    # A queue's own max_size is not "queue_size": the message names the bound and both
    # places it can be set, whichever set it.
    bound = {"mail": QueueBound(3)}
    store.enqueue([job(queue="mail") for _ in range(3)], now=T0, bounds=bound)
    with pytest.raises(QueueFull) as raised:
        store.enqueue([job(queue="mail")], now=T0, bounds=bound)
    assert str(raised.value) == (
        "queue 'mail' is full: 3 jobs waiting (ready, scheduled or retrying), its bound is 3; "
        "nothing was written (raise "
        "[worker] queue_size or [queues.mail] max_size, or start more workers)")


@pytest.mark.parametrize("bounded_by", ["max_size", "queue_size"])
def test_a_batch_bigger_than_the_room_left_is_told_so_on_every_backend(store, bounded_by):
    # Given a queue bounded at 3 (by its own max_size or by [worker] queue_size) with 1 waiting
    bound = {"mail": QueueBound(3)} if bounded_by == "max_size" else None
    size = 3 if bounded_by == "queue_size" else 0
    store.enqueue([job(queue="mail")], now=T0, queue_size=size, bounds=bound)
    # When a batch of 5 comes, more than the 2 left
    with pytest.raises(QueueFull) as raised:
        store.enqueue([job(queue="mail") for _ in range(5)], now=T0, queue_size=size,
                      bounds=bound)
    # Then the error says the batch does not fit, not that the queue is full
    assert str(raised.value) == (
        "queue 'mail' has room for 2 more jobs (1 waiting, bound 3); this batch adds 5; "
        "nothing was written (raise [worker] queue_size or [queues.mail] max_size, or start "
        "more workers)")
    assert (raised.value.queue, raised.value.room) == ("mail", 2)
    assert store.count_jobs() == 1


def test_a_refused_batch_counts_only_the_jobs_of_the_full_queue(store):
    # Given a full reject queue
    bound = {"mail": QueueBound(1, "reject"), "default": QueueBound(10, "block")}
    store.enqueue([job(queue="mail")], now=T0, bounds=bound)
    # When a batch holding a job of another queue and two of the full one is refused
    with pytest.raises(QueueFull):
        store.enqueue([job(queue="default"), job(queue="mail"), job(queue="mail")], now=T0,
                      bounds=bound)
    # Then only the full queue's two jobs are counted as rejected, against it
    assert store.backpressure_totals() == {"mail": (2, 0)}
    assert store.count_jobs() == 1


def test_the_worker_queue_size_bounds_queues_without_their_own_bound(store):
    store.enqueue([job(queue="a"), job(queue="a")], now=T0, queue_size=2,
                  bounds={"b": QueueBound(0)})
    with pytest.raises(QueueFull):
        store.enqueue([job(queue="a")], now=T0, queue_size=2)
    store.enqueue([job(queue="b") for _ in range(5)], now=T0, queue_size=2,
                  bounds={"b": QueueBound(0)})  # 0: unbounded
    assert store.backpressure_totals()["a"] == (1, 0)


def test_drop_oldest_keeps_eight_producers_at_the_bound_and_cancels_the_rest(store, another):
    bound = {"feed": QueueBound(10, "drop_oldest")}

    def produce(handle: Store, n: int) -> None:
        for i in range(5):
            handle.enqueue([job(T0 + i, queue="feed")], now=T0 + 10, bounds=bound)

    race(another, produce)
    assert waiting(store, "feed") == 10
    assert store.count_jobs() == PRODUCERS * 5  # dropped jobs are kept, cancelled
    dropped = store.list_jobs(JobFilter(state=JobState.CANCELLED), limit=1000)
    assert len(dropped) == PRODUCERS * 5 - 10
    assert all("dropped" in (j.reason or "") and "feed" in (j.reason or "") for j in dropped)
    assert store.backpressure_totals()["feed"] == (0, PRODUCERS * 5 - 10)
    assert store.counts_by_state()[JobState.CANCELLED] == PRODUCERS * 5 - 10


def test_drop_oldest_drops_the_job_due_longest_ago(store):
    bound = {"feed": QueueBound(3, "drop_oldest")}
    jobs = [job(T0 + i, queue="feed") for i in range(3)]
    store.enqueue(jobs, now=T0 + 10, bounds=bound)
    newer = [job(T0 + 5, queue="feed"), job(T0 + 6, queue="feed")]
    result = store.enqueue(newer, now=T0 + 10, bounds=bound)
    assert set(result.dropped) == {jobs[0].id, jobs[1].id}
    assert store.get_job(jobs[0].id).state == JobState.CANCELLED
    assert store.get_job(jobs[2].id).state == JobState.AVAILABLE


def test_drop_oldest_never_drops_the_job_it_was_called_to_write(store):
    # Given a drop_oldest queue full of jobs scheduled for tomorrow
    bound = {"feed": QueueBound(3, "drop_oldest")}
    tomorrow = [job(T0 + 86400, queue="feed") for _ in range(3)]
    store.enqueue(tomorrow, now=T0, bounds=bound)
    # When a job due now comes (its run_at earlier than theirs)
    newest = job(T0, queue="feed")
    result = store.enqueue([newest], now=T0, bounds=bound)
    # Then one of the others makes room, the first written, and the new job waits
    assert result.dropped == (tomorrow[0].id,)
    assert store.get_job(newest.id).state == JobState.AVAILABLE
    assert store.get_job(tomorrow[0].id).state == JobState.CANCELLED
    assert [store.get_job(j.id).state for j in tomorrow[1:]] == [JobState.SCHEDULED] * 2
    assert waiting(store, "feed") == 3


def test_drop_oldest_drops_the_others_before_any_job_of_the_batch(store):
    # Given a drop_oldest queue bounded at 3 holding two jobs due later
    bound = {"feed": QueueBound(3, "drop_oldest")}
    later = [job(T0 + 100, queue="feed"), job(T0 + 200, queue="feed")]
    store.enqueue(later, now=T0, bounds=bound)
    # When a batch of four jobs due now comes
    batch = [job(T0 - 4 + i, queue="feed") for i in range(4)]
    result = store.enqueue(batch, now=T0, bounds=bound)
    # Then both others go, and then the oldest of the batch, as the batch alone is over
    assert result.dropped == (later[0].id, later[1].id, batch[0].id)
    assert [store.get_job(j.id).state for j in batch[1:]] == [JobState.AVAILABLE] * 3
    assert waiting(store, "feed") == 3


def test_drop_oldest_with_a_batch_bigger_than_the_bound_keeps_its_newest(store):
    batch = [job(T0 + i, queue="feed") for i in range(5)]
    result = store.enqueue(batch, now=T0 + 10, bounds={"feed": QueueBound(3, "drop_oldest")})
    assert result.dropped == (batch[0].id, batch[1].id)
    assert waiting(store, "feed") == 3


# -- unique jobs -------------------------------------------------------------------------


def test_eight_producers_write_one_job_per_unique_key(store, another):
    answers: list[str] = []

    def produce(handle: Store, n: int) -> None:
        for _ in range(5):
            new = job(unique_key="report:42")
            dup = handle.enqueue([new], now=T0).duplicates
            answers.append(dup.get(new.id, new.id))

    race(another, produce)
    [only] = store.list_jobs()
    assert answers.count(only.id) == PRODUCERS * 5


def test_a_unique_window_lets_a_new_job_in_once_it_has_passed(store):
    first = job(unique_key="k", unique_for=10)
    store.enqueue([first], now=T0)
    again = job(unique_key="k", unique_for=10)
    assert store.enqueue([again], now=T0 + 5).duplicates == {again.id: first.id}
    later = job(unique_key="k", unique_for=10)
    assert store.enqueue([later], now=T0 + 11).duplicates == {}
    assert store.count_jobs() == 2


def test_finished_jobs_count_when_their_state_is_named(store):
    states = (JobState.AVAILABLE, JobState.SCHEDULED, JobState.EXECUTING, JobState.COMPLETED)
    first = job(unique_key="k", unique_for=60, unique_states=states)
    store.enqueue([first], now=T0)
    [claimed] = store.claim(now=T0, owner=OWNER, lease_seconds=60, want=1).claimed
    store.complete([Ack(claimed.id, 1, T0, T0 + 1)])
    again = job(unique_key="k", unique_for=60, unique_states=states)
    assert store.enqueue([again], now=T0 + 2).duplicates == {again.id: first.id}


def test_a_running_job_does_not_count_when_only_waiting_states_do(store):
    waiting_only = (JobState.AVAILABLE, JobState.SCHEDULED)
    store.enqueue([job(unique_key="k", unique_states=waiting_only)], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=60, want=1)
    again = job(unique_key="k", unique_states=waiting_only)
    assert store.enqueue([again], now=T0).duplicates == {}
    assert store.count_jobs() == 2


def test_a_key_given_twice_in_one_batch_writes_one_job(store):
    a, b = job(unique_key="k"), job(unique_key="k")
    assert store.enqueue([a, b], now=T0).duplicates == {b.id: a.id}
    assert store.count_jobs() == 1


# -- pause and resume --------------------------------------------------------------------


def test_a_paused_queue_is_not_claimed_until_resumed(store, another):
    mail, other = job(queue="mail"), job(queue="other")
    store.enqueue([mail, other], now=T0)
    assert store.set_pause("queue", "mail", True, now=T0, by="alice")
    claimed = store.claim(now=T0, owner=OWNER, lease_seconds=60, want=10).claimed
    assert [c.id for c in claimed] == [other.id]
    assert store.get_job(mail.id).state == JobState.AVAILABLE
    # Another handle (another worker) sees the same state.
    [row] = another().list_pauses()
    assert (row.kind, row.name, row.paused, row.changed_by) == ("queue", "mail", True, "alice")
    assert store.set_pause("queue", "mail", False, now=T0 + 1)
    claimed = store.claim(now=T0 + 1, owner=OWNER, lease_seconds=60, want=10).claimed
    assert [c.id for c in claimed] == [mail.id]


def test_a_paused_task_is_not_claimed_in_any_queue(store):
    slow, fast = job(task="tests.jobs.slow"), job(task="tests.jobs.add")
    store.enqueue([slow, fast], now=T0)
    store.set_pause("task", "tests.jobs.slow", True, now=T0)
    claimed = store.claim(now=T0, owner=OWNER, lease_seconds=60, want=10).claimed
    assert [c.id for c in claimed] == [fast.id]


def test_only_due_jobs_of_a_paused_queue_do_not_make_a_worker_spin(store):
    store.enqueue([job(queue="mail")], now=T0)
    store.set_pause("queue", "mail", True, now=T0)
    result = store.claim(now=T0, owner=OWNER, lease_seconds=60, want=10)
    assert result.claimed == [] and result.next_due is None


@pytest.mark.parametrize("limits", [None, FlowLimits(aging=300),
                                    FlowLimits(queue_concurrency={"other": 50})],
                         ids=["no-limits", "aging", "a-cap"])
def test_a_suspect_of_a_paused_queue_does_not_hold_back_a_busy_worker(store, limits):
    # A job whose worker died runs alone, once its process runs nothing else; while its
    # queue is paused it is not due to anyone, so it holds nothing back.
    suspect = job(queue="mail")
    store.enqueue([suspect], now=T0)
    store.claim(now=T0, owner="gone:1:1", lease_seconds=1, want=1)
    assert store.recover_orphans(crash_limit=5, now=T0 + 2).requeued == [suspect.id]
    store.set_pause("queue", "mail", True, now=T0 + 2)
    other = job(T0 + 2, queue="other")
    store.enqueue([other], now=T0 + 2)
    result = store.claim(now=T0 + 3, owner=OWNER, lease_seconds=60, want=10, busy=True,
                         limits=limits)
    assert ([c.id for c in result.claimed], result.suspect) == ([other.id], False)
    store.set_pause("queue", "mail", False, now=T0 + 4)
    result = store.claim(now=T0 + 5, owner=OWNER, lease_seconds=60, want=10, busy=True,
                         limits=limits)
    assert (result.claimed, result.suspect) == ([], True)  # due again: it waits to run alone


@pytest.mark.parametrize("limits", [None, FlowLimits(aging=300),
                                    FlowLimits(queue_concurrency={"other": 50})],
                         ids=["no-limits", "aging", "a-cap"])
def test_a_worker_that_cannot_isolate_a_suspect_claims_the_other_jobs_and_leaves_it(
        store, limits):
    # A worker whose suspect outlasted its isolation_limit cannot run another one alone
    # until that job ends: it claims the other jobs meanwhile, never the suspect.
    suspect = job(queue="mail", max_attempts=3)
    store.enqueue([suspect], now=T0)
    store.claim(now=T0, owner="gone:1:1", lease_seconds=1, want=1)
    assert store.recover_orphans(crash_limit=5, now=T0 + 2).requeued == [suspect.id]
    others = [job(T0 + 2, queue="other"), job(T0 + 2, queue="mail")]
    store.enqueue(others, now=T0 + 2)
    result = store.claim(now=T0 + 3, owner=OWNER, lease_seconds=60, want=10, busy=True,
                         leave_suspects=True, limits=limits)
    assert sorted(c.id for c in result.claimed) == sorted(o.id for o in others)
    assert not result.suspect
    assert store.get_job(suspect.id).state == JobState.AVAILABLE
    # Once it can isolate one again, the suspect is claimed, alone
    result = store.claim(now=T0 + 4, owner="third:3:1", lease_seconds=60, want=10,
                         limits=limits)
    assert ([c.id for c in result.claimed], result.suspect) == ([suspect.id], True)


def test_a_suspect_its_queue_limit_holds_back_does_not_hold_back_an_idle_worker(store):
    # A suspect runs alone; while its queue is at its concurrency limit it cannot run at
    # all, so an idle worker claims the other queues' jobs meanwhile.
    suspect, running = job(queue="slow", max_attempts=3), job(queue="slow")
    store.enqueue([suspect], now=T0)
    store.claim(now=T0, owner="gone:1:1", lease_seconds=1, want=1)
    store.enqueue([running], now=T0)
    store.claim(now=T0, owner="other:2:1", lease_seconds=3600, want=1)
    assert store.recover_orphans(crash_limit=5, now=T0 + 2).requeued == [suspect.id]
    other = job(T0 + 2)
    store.enqueue([other], now=T0 + 2)
    limits = FlowLimits(queue_concurrency={"slow": 1})
    result = store.claim(now=T0 + 3, owner=OWNER, lease_seconds=60, want=10, limits=limits)
    assert ([c.id for c in result.claimed], result.suspect) == ([other.id], False)
    # Once the limit has room, the suspect is claimed, alone
    store.complete([Ack(running.id, 1, T0, T0 + 4)])
    result = store.claim(now=T0 + 5, owner="third:3:1", lease_seconds=60, want=10,
                         limits=limits)
    assert ([c.id for c in result.claimed], result.suspect) == ([suspect.id], True)


def test_settings_seed_a_pause_only_where_nobody_chose(store):
    store.set_pause("queue", "mail", False, now=T0, by="bob")
    store.seed_pauses("queue", ["mail", "reports"], now=T0 + 1)
    state = {(r.kind, r.name): r.paused for r in store.list_pauses()}
    assert state == {("queue", "mail"): False, ("queue", "reports"): True}


# -- cancel ------------------------------------------------------------------------------


def test_cancelling_a_waiting_job_says_who_did(store):
    waiting_job = job()
    store.enqueue([waiting_job], now=T0)
    assert store.request_cancel(waiting_job.id, by="alice", now=T0 + 1) == JobState.AVAILABLE
    row = store.get_job(waiting_job.id)
    assert (row.state, row.finished_at) == (JobState.CANCELLED, T0 + 1)
    assert "alice" in (row.reason or "")
    assert store.cancel_requests([waiting_job.id]) == {}


def test_cancelling_a_running_job_asks_its_worker_for_that_attempt(store):
    running = job(max_attempts=3)
    store.enqueue([running], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=60, want=1)
    assert store.request_cancel(running.id, by="alice", now=T0 + 1) == JobState.EXECUTING
    assert store.get_job(running.id).state == JobState.EXECUTING  # its worker settles it
    assert store.cancel_requests([running.id, "nope"]) == {running.id: "alice"}
    store.cancel_attempt(running.id, 1, now=T0 + 2, reason="cancelled by alice while running")
    row = store.get_job(running.id)
    assert (row.state, row.finished_at) == (JobState.CANCELLED, T0 + 2)
    assert store.cancel_requests([running.id]) == {}


def test_a_cancel_request_means_nothing_to_a_later_attempt(store):
    running = job(max_attempts=3)
    store.enqueue([running], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=60, want=1)
    store.request_cancel(running.id, by="alice", now=T0)
    # The attempt failed before its worker looked at the request
    store.retry(running.id, 1, failure(), worker=OWNER, now=T0 + 1, run_at=T0 + 1, reason=None)
    store.claim(now=T0 + 1, owner=OWNER, lease_seconds=60, want=1)
    assert store.cancel_requests([running.id]) == {}


@pytest.mark.parametrize("reason", ["handed back at shutdown", "interrupted"])
def test_a_job_handed_back_after_its_cancel_was_asked_is_cancelled(store, reason):
    # Given a running job someone asked to cancel, before its worker stopped it
    running = job(max_attempts=3)
    store.enqueue([running], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=60, want=1)
    assert store.request_cancel(running.id, by="alice", now=T0 + 1) == JobState.EXECUTING
    # When its worker stops (SIGTERM) and hands the attempt back
    done = store.hand_back(running.id, 1, now=T0 + 2, reason=reason)
    # Then the cancel holds: the job ends cancelled (and says so) and no worker runs it again
    assert done is HandBack.CANCELLED
    row = store.get_job(running.id)
    assert (row.state, row.finished_at) == (JobState.CANCELLED, T0 + 2)
    assert row.reason == "cancelled by alice while running"
    assert store.claim(now=T0 + 3, owner=OWNER, lease_seconds=60, want=1).claimed == []
    assert store.cancel_requests([running.id]) == {}


def test_a_claimed_job_cancelled_before_it_started_used_no_attempt_and_no_run_time(store):
    # Given a job claimed into a worker's prefetch buffer, cancelled before it started
    waiting = job(max_attempts=3)
    store.enqueue([waiting], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=60, want=1)
    store.cancel_attempt(waiting.id, 1, now=T0 + 5, reason="cancelled by alice before it "
                         "started", unstarted=True)
    # Then it reads as a job cancelled while waiting: no attempt, no run time
    row = store.get_job(waiting.id)
    assert (row.state, row.attempt, row.started_at, row.finished_at) == (
        JobState.CANCELLED, 0, None, T0 + 5)
    assert row.duration is None
    # And a retried one keeps its last finished attempt, as a cancel while it waited does
    retried = job(max_attempts=3)
    store.enqueue([retried], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=60, want=1)
    store.retry(retried.id, 1, failure(started_at=T0 + 1), worker=OWNER, now=T0 + 2,
                run_at=T0 + 3, reason=None)
    store.claim(now=T0 + 4, owner=OWNER, lease_seconds=60, want=1)
    store.cancel_attempt(retried.id, 2, now=T0 + 9, reason="x", unstarted=True)
    row = store.get_job(retried.id)
    assert (row.state, row.attempt, row.started_at, row.finished_at) == (
        JobState.CANCELLED, 1, T0 + 1, T0 + 2)


def test_a_finished_job_is_not_cancelled(store):
    done = job()
    store.enqueue([done], now=T0)
    [claimed] = store.claim(now=T0, owner=OWNER, lease_seconds=60, want=1).claimed
    store.complete([Ack(claimed.id, 1, T0, T0 + 1)])
    assert store.request_cancel(done.id, by="alice", now=T0 + 2) == JobState.COMPLETED
    assert store.get_job(done.id).state == JobState.COMPLETED
    assert store.request_cancel("no-such-job", by="alice", now=T0) is None


def test_a_cancelled_job_whose_worker_died_does_not_run_again(store):
    running = job(max_attempts=3)
    store.enqueue([running], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=60, want=1)
    store.request_cancel(running.id, by="alice", now=T0 + 1)
    store.recover_orphans(crash_limit=3, now=T0 + 120)  # the lease lapsed: its worker is gone
    row = store.get_job(running.id)
    assert row.state == JobState.CANCELLED and "alice" in (row.reason or "")
    assert store.claim(now=T0 + 121, owner=OWNER, lease_seconds=60, want=1).claimed == []


def test_unfinished_jobs_are_counted_per_queue_and_state(store):
    done, running, mail = job(), job(), job(queue="mail")
    store.enqueue([done, running, mail, job(T0 + 60)], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=60, want=2)  # done and running
    store.complete([Ack(done.id, 1, T0, T0 + 1)])
    counts = {(q, s): n for q, s, n in store.unfinished_by_queue()}
    assert counts == {("default", JobState.EXECUTING): 1, ("default", JobState.SCHEDULED): 1,
                      ("mail", JobState.AVAILABLE): 1}


@pytest.mark.parametrize("limits", [
    FlowLimits(weights={"mail": 3, "other": 1}),            # shares by weight
    FlowLimits(task_concurrency={"tests.jobs.add": 10}),     # one stream under limits
], ids=["weights", "concurrency"])
def test_the_claim_under_limits_skips_paused_queues_and_tasks(store, limits):
    mail, other, slow = job(queue="mail"), job(queue="other"), job(task="tests.jobs.slow")
    store.enqueue([mail, other, slow], now=T0)
    store.set_pause("queue", "mail", True, now=T0)
    store.set_pause("task", "tests.jobs.slow", True, now=T0)
    result = store.claim(now=T0, owner=OWNER, lease_seconds=60, want=10, limits=limits)
    assert [c.id for c in result.claimed] == [other.id]
    result = store.claim(now=T0, owner=OWNER, lease_seconds=60, want=10, limits=limits)
    assert result.claimed == [] and result.next_due is None  # nothing to spin on
