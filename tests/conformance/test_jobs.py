"""The job life cycle every backend provides: enqueue, claim, outcomes, recovery, by hand, prune."""

from __future__ import annotations

import time

import pytest

from runner.errors import DuplicateJob, JobNotFound, QueueFull
from runner.retry import RetryPolicy, backoff_delay
from runner.store.backend import Store
from runner.store.job_rows import Ack
from runner.store.sqlite import SqliteStore
from runner.store.sqlite.maintenance import RetentionSection
from runner.store.sqlite.queries import JobFilter
from runner.store.states import HandBack, JobState
from tests.conformance.helpers import OTHER, OWNER, T0, failure, job

LEASE = 30.0


def claim(store: Store, now: float = T0, want: int = 10, owner: str = OWNER,
          queues: tuple[str, ...] = ()) -> list[str]:
    result = store.claim(now=now, owner=owner, lease_seconds=LEASE, want=want, queues=queues)
    return [c.id for c in result.claimed]


# -- enqueue -------------------------------------------------------------------------


def test_enqueued_job_is_available_when_due_and_scheduled_when_later(store):
    due, later = job(T0), job(T0 + 60)
    store.enqueue([due, later], now=T0)
    assert store.get_job(due.id).state == JobState.AVAILABLE
    assert store.get_job(later.id).state == JobState.SCHEDULED
    assert store.counts_by_state()[JobState.AVAILABLE] == 1


def test_a_batch_over_the_queue_bound_writes_nothing(store):
    store.enqueue([job(), job()], now=T0, queue_size=3)
    with pytest.raises(QueueFull):
        store.enqueue([job(), job()], now=T0, queue_size=3)
    assert store.count_jobs() == 2
    store.enqueue([job(queue="other")], now=T0, queue_size=3)  # the bound is per queue


def test_a_unique_key_admits_one_live_job_at_a_time(store):
    first = job(unique_key="report:42")
    store.enqueue([first], now=T0)
    second = job(unique_key="report:42")
    assert store.enqueue([second], now=T0).duplicates == {second.id: first.id}
    assert store.count_jobs() == 1
    [claimed] = claim(store)
    store.complete([Ack(claimed, 1, T0, T0 + 1)])
    third = job(unique_key="report:42")
    assert store.enqueue([third], now=T0 + 2).duplicates == {}  # the first one is finished


def test_an_existing_id_is_refused_naming_the_id(store):
    store.enqueue([job(job_id="same")], now=T0)
    with pytest.raises(DuplicateJob) as raised:
        store.enqueue([job(job_id="same")], now=T0)
    assert raised.value.by == "id"


# -- claim with a lease ----------------------------------------------------------------


def test_claim_leases_due_jobs_best_priority_first(store):
    low, high, later = job(priority=0), job(priority=5), job(T0 + 60, priority=9)
    store.enqueue([low, high, later], now=T0)
    result = store.claim(now=T0, owner=OWNER, lease_seconds=LEASE, want=10)
    assert [c.id for c in result.claimed] == [high.id, low.id]
    row = store.get_job(high.id)
    assert (row.state, row.attempt, row.lease_owner) == (JobState.EXECUTING, 1, OWNER)
    assert row.started_at == T0
    assert store.get_job(later.id).state == JobState.SCHEDULED


def test_claim_takes_no_more_than_wanted_and_nothing_twice(store):
    store.enqueue([job() for _ in range(5)], now=T0)
    first = claim(store, want=3)
    second = claim(store, want=3, owner=OTHER)
    assert len(first) == 3 and len(second) == 2 and not set(first) & set(second)
    assert claim(store) == []


def test_claim_serves_only_the_queues_asked_for(store):
    mail, video = job(queue="mail"), job(queue="video")
    store.enqueue([mail, video], now=T0)
    assert claim(store, queues=("mail",)) == [mail.id]


def test_nothing_due_reports_when_the_next_job_is(store):
    store.enqueue([job(T0 + 42)], now=T0)
    result = store.claim(now=T0, owner=OWNER, lease_seconds=LEASE, want=1)
    assert result.claimed == [] and result.next_due == T0 + 42


# -- outcomes ----------------------------------------------------------------------------


def test_a_late_ack_of_an_attempt_that_was_claimed_again_is_not_written(store):
    new = job()
    store.enqueue([new], now=T0)
    claim(store, owner=OTHER)
    store.recover_orphans(crash_limit=3, now=T0 + LEASE + 1)  # its lease expired
    claim(store, now=T0 + LEASE + 1)  # attempt 2 runs
    store.complete([Ack(new.id, 1, T0, T0 + 2)])
    assert store.get_job(new.id).state == JobState.EXECUTING
    store.complete([Ack(new.id, 2, T0 + 1, T0 + 3)])
    assert store.get_job(new.id).state == JobState.COMPLETED


def test_results_and_next_steps_are_written_with_the_completion(store):
    new, step = job(), job()
    store.enqueue([new], now=T0)
    claim(store)
    store.complete([Ack(new.id, 1, T0, T0 + 1, results=((new.id, b"42"),), jobs=(step,))])
    assert store.get_job(step.id).state == JobState.AVAILABLE
    assert store.get_job(new.id).state == JobState.COMPLETED


def test_ack_completes_the_attempt(store):
    new = job()
    store.enqueue([new], now=T0)
    claim(store)
    store.complete([Ack(new.id, 1, T0 + 0.5, T0 + 2)])
    row = store.get_job(new.id)
    assert (row.state, row.started_at, row.finished_at) == (JobState.COMPLETED, T0 + 0.5, T0 + 2)
    assert row.lease_owner is None


def test_acks_written_with_the_next_claim_land_in_the_same_step(store):
    first, second = job(), job(T0 + 1)
    store.enqueue([first, second], now=T0)
    claim(store)
    result = store.claim(now=T0 + 1, owner=OWNER, lease_seconds=LEASE, want=1,
                         acks=[Ack(first.id, 1, None, T0 + 1)])
    assert [c.id for c in result.claimed] == [second.id]
    assert store.get_job(first.id).state == JobState.COMPLETED


def test_a_retry_waits_out_its_backoff_and_runs_as_the_same_job(store):
    policy = RetryPolicy(retry_limit=3, retry_delay=2.0, backoff=2.0, max_retry_delay=60.0,
                         jitter=0.0)
    new = job(max_attempts=4)
    store.enqueue([new], now=T0)
    claim(store)
    run_at = T0 + backoff_delay(policy, 1)
    store.retry(new.id, 1, failure(started_at=T0), worker=OWNER, now=T0 + 1, run_at=run_at,
                reason="retry later")
    row = store.get_job(new.id)
    assert (row.state, row.failures, row.error_message) == (JobState.RETRYING, 1, "boom")
    assert claim(store, now=run_at - 0.01) == []
    assert claim(store, now=run_at) == [new.id]
    assert store.get_job(new.id).attempt == 2
    [attempt_error] = store.job_errors(new.id)
    assert (attempt_error.attempt, attempt_error.kind, attempt_error.worker) == (1, "error", OWNER)


def test_dead_after_the_retry_limit_with_every_attempt_recorded(store):
    new = job(max_attempts=2)
    store.enqueue([new], now=T0)
    claim(store)
    store.retry(new.id, 1, failure("first"), worker=OWNER, now=T0, run_at=T0 + 1, reason=None)
    claim(store, now=T0 + 1)
    row = store.get_job(new.id)
    assert row.attempt == row.max_attempts  # the worker's cue: no attempt is left
    store.bury(new.id, 2, failure("second"), worker=OWNER, now=T0 + 2, reason="error: second")
    row = store.get_job(new.id)
    assert (row.state, row.failures, row.error_message) == (JobState.DEAD, 2, "second")
    assert [e.message for e in store.job_errors(new.id)] == ["first", "second"]
    assert claim(store, now=T0 + 100) == []


def test_hand_back_release_and_unclaim_leave_the_attempt_unused(store):
    interrupted, early, unstarted = job(), job(), job()
    store.enqueue([interrupted, early, unstarted], now=T0)
    claim(store)
    assert store.hand_back(interrupted.id, 1, now=T0 + 1,
                           reason="interrupted") is HandBack.HANDED_BACK
    store.release(early.id, T0 + 50)
    store.unclaim([unstarted.id])
    # The worker gave the attempt up (its retry budget was not spent): the next is the same
    assert (store.get_job(interrupted.id).state, store.get_job(interrupted.id).attempt) == (
        JobState.AVAILABLE, 0)
    assert (store.get_job(early.id).state, store.get_job(early.id).attempt) == (
        JobState.SCHEDULED, 0)
    assert (store.get_job(unstarted.id).state, store.get_job(unstarted.id).attempt) == (
        JobState.AVAILABLE, 0)


# -- crash recovery ------------------------------------------------------------------------


def test_a_job_whose_lease_expired_is_requeued_with_the_crash_counted(store):
    new = job()
    store.enqueue([new], now=T0)
    claim(store, owner=OTHER)
    assert store.recover_orphans(crash_limit=3, now=T0 + LEASE - 1).requeued == []
    recovery = store.recover_orphans(crash_limit=3, now=T0 + LEASE + 1)
    assert recovery.requeued == [new.id]
    row = store.get_job(new.id)
    assert (row.state, row.crashes, row.lease_owner) == (JobState.AVAILABLE, 1, None)
    assert [e.kind for e in store.job_errors(new.id)] == ["crash"]
    assert claim(store, now=T0 + LEASE + 1) == [new.id]


def test_a_lease_given_grace_counts_as_expired_that_much_later_and_dates_the_crash_now(store):
    # Given a running job whose lease expired while the recovering worker's own writes
    # were held back for 10 s (a lock on the database)
    new = job()
    store.enqueue([new], now=T0)
    claim(store, owner=OTHER)
    # Then its lease counts as expired 10 s later
    assert store.recover_orphans(crash_limit=3, now=T0 + LEASE + 9, grace=10).requeued == []
    assert store.get_job(new.id).state == JobState.EXECUTING
    assert store.recover_orphans(crash_limit=3, now=T0 + LEASE + 11,
                                 grace=10).requeued == [new.id]
    # And the crash is dated when it was found, not when the lease expired
    row = store.get_job(new.id)
    assert (row.state, row.crashes, row.run_at) == (JobState.AVAILABLE, 1, T0 + LEASE + 11)
    [error] = store.job_errors(new.id)
    assert (error.kind, error.failed_at) == ("crash", T0 + LEASE + 11)


def test_a_heartbeat_keeps_a_running_job_leased(store):
    new = job()
    store.enqueue([new], now=T0)
    claim(store, owner=OTHER)
    store.register(OTHER, concurrency=1, queues=(), now=T0)
    store.heartbeat(OTHER, [new.id], lease_seconds=LEASE, now=T0 + LEASE - 1)
    assert store.recover_orphans(crash_limit=3, now=T0 + LEASE + 1).requeued == []
    assert store.get_job(new.id).state == JobState.EXECUTING


def test_a_heartbeat_says_which_leases_it_holds_and_reads_the_servers_clock(store):
    # Given jobs this worker runs, one another worker runs, and one this worker finished
    mine, theirs, done = job(), job(), job()
    store.enqueue([mine, theirs, done], now=T0)
    [first] = store.claim(now=T0, owner=OWNER, lease_seconds=LEASE, want=1).claimed
    [second] = store.claim(now=T0, owner=OTHER, lease_seconds=LEASE, want=1).claimed
    [third] = store.claim(now=T0, owner=OWNER, lease_seconds=LEASE, want=1).claimed
    store.complete([Ack(third.id, 1, T0, T0 + 1)])
    store.register(OWNER, concurrency=2, queues=(), now=T0)
    # When this worker beats for all three
    before = time.time()
    beat = store.heartbeat(OWNER, [first.id, second.id, third.id], lease_seconds=LEASE,
                           now=T0 + 2)
    after = time.time()
    # Then it holds the lease of its running job only, extended, and read the server's
    # clock on the way (a file has none but this host's)
    assert beat.held == {first.id}
    assert store.recover_orphans(crash_limit=3, now=T0 + LEASE + 1).requeued == [second.id]
    if isinstance(store, SqliteStore):
        assert beat.server_time is None
    else:  # the test servers run on this host, on its clock
        assert before - 1 <= beat.server_time <= after + 1


def test_a_heartbeat_never_shortens_a_lease(store):
    # A clock that jumped back since its offset was last measured writes an earlier
    # expiry than the one it wrote before: the lease keeps the later one.
    new = job()
    store.enqueue([new], now=T0)
    claim(store, owner=OWNER)
    store.heartbeat(OWNER, [new.id], lease_seconds=LEASE, now=T0 + 10)
    beat = store.heartbeat(OWNER, [new.id], lease_seconds=LEASE, now=T0 - 20)
    assert beat.held == {new.id}
    assert store.recover_orphans(crash_limit=3, now=T0 + LEASE + 5).requeued == []
    assert store.recover_orphans(crash_limit=3, now=T0 + LEASE + 11).requeued == [new.id]


def test_crash_limit_buries_a_job_that_keeps_killing_its_worker(store):
    new = job()
    store.enqueue([new], now=T0)
    at = T0
    for _ in range(2):
        claim(store, now=at, owner=OTHER)
        at += LEASE + 1
        store.recover_orphans(crash_limit=3, now=at)
    claim(store, now=at, owner=OTHER)
    recovery = store.recover_orphans(crash_limit=3, now=at + LEASE + 1)
    assert recovery.buried == [new.id]
    row = store.get_job(new.id)
    assert (row.state, row.crashes, row.error_type) == (JobState.DEAD, 3, "WorkerDied")


def test_a_job_buried_by_its_crashes_reads_as_failed_when_it_died(store):
    # Failure lists order by the last failure, and a group action counted earlier leaves
    # out jobs that failed after its count: a crash that kills the job is that failure.
    new = job()
    store.enqueue([new], now=T0)
    claim(store, now=T0, owner=OTHER)
    died = T0 + LEASE + 1
    assert store.recover_orphans(crash_limit=1, now=died).buried == [new.id]
    row = store.get_job(new.id)
    assert (row.state, row.last_failed_at, row.first_failed_at) == (JobState.DEAD, died, died)
    assert row.failures == 0  # its attempts' failures count real failures only


def test_a_job_buried_by_its_crashes_keeps_its_payload_for_the_worker_that_buried_it(store):
    # (The worker reads it to call the task's on_failure.)
    new = job()
    store.enqueue([new], now=T0)
    claim(store, now=T0, owner=OTHER)
    assert store.recover_orphans(crash_limit=1, now=T0 + LEASE + 1).buried == [new.id]
    assert store.job_payload(new.id) == b"payload"
    assert store.job_payload("no-such-job") is None


def test_a_crash_gives_the_same_reason_on_every_backend(store):
    new = job()
    store.enqueue([new], now=T0)
    claim(store, owner=OTHER)
    store.recover_orphans(crash_limit=2, now=T0 + LEASE + 1)
    assert store.get_job(new.id).reason == "worker died; requeued"
    claim(store, now=T0 + LEASE + 1, owner=OTHER)
    store.recover_orphans(crash_limit=2, now=T0 + 2 * LEASE + 2)
    assert store.get_job(new.id).reason == "worker died (2 times while running it)"
    first = job()
    store.enqueue([first], now=T0)
    claim(store, now=T0, owner=OTHER)
    store.recover_orphans(crash_limit=1, now=T0 + 3 * LEASE)
    assert store.get_job(first.id).reason == "worker died (once while running it)"


def _reclaimed_after_its_lease(store: Store) -> str:
    """A job whose first worker stalled past its lease: requeued, claimed again, running."""
    new = job()
    store.enqueue([new], now=T0)
    claim(store, owner=OTHER)
    store.recover_orphans(crash_limit=3, now=T0 + LEASE + 1)
    assert claim(store, now=T0 + LEASE + 2) == [new.id]
    assert store.get_job(new.id).attempt == 2
    return new.id


@pytest.mark.parametrize("outcome", ["retry", "bury"])
def test_a_late_failure_of_an_attempt_a_later_one_replaced_is_not_written(store, outcome):
    job_id = _reclaimed_after_its_lease(store)
    # When the stalled first worker reports its attempt's failure after all
    if outcome == "retry":
        store.retry(job_id, 1, failure("late"), worker=OTHER, now=T0 + LEASE + 3,
                    run_at=T0 + LEASE + 4, reason="retrying")
    else:
        store.bury(job_id, 1, failure("late"), worker=OTHER, now=T0 + LEASE + 3, reason="x")
    # Then the running attempt keeps the job: it is not waiting to run a third time
    row = store.get_job(job_id)
    assert (row.state, row.attempt, row.lease_owner) == (JobState.EXECUTING, 2, OWNER)
    assert claim(store, now=T0 + LEASE + 10) == []
    # and that attempt's own outcome is written
    store.complete([Ack(job_id, 2, T0 + LEASE + 2, T0 + LEASE + 5)])
    assert store.get_job(job_id).state == JobState.COMPLETED


def test_a_late_failure_still_counts_while_no_later_attempt_has_the_job(store):
    # Given a job requeued after its lease expired, not claimed again yet
    new = job()
    store.enqueue([new], now=T0)
    claim(store, owner=OTHER)
    store.recover_orphans(crash_limit=3, now=T0 + LEASE + 1)
    # When its first worker reports the attempt failed for good, as a late completion would
    store.bury(new.id, 1, failure("late"), worker=OTHER, now=T0 + LEASE + 2, reason="x")
    # Then the outcome is written
    assert store.get_job(new.id).state == JobState.DEAD


def test_a_late_hand_back_leaves_a_later_attempt_running(store):
    job_id = _reclaimed_after_its_lease(store)
    # the stalled worker: nothing written, and it says so
    assert store.hand_back(job_id, 1, now=T0 + LEASE + 3,
                           reason="shutdown") is HandBack.NOTHING
    row = store.get_job(job_id)
    assert (row.state, row.attempt, row.lease_owner) == (JobState.EXECUTING, 2, OWNER)


# -- by hand ---------------------------------------------------------------------------------


def test_cancel_takes_waiting_jobs_only(store):
    running, waiting = job(), job(T0 + 10)
    store.enqueue([running, waiting], now=T0)
    assert claim(store) == [running.id]
    assert store.cancel_jobs([waiting.id, running.id], now=T0 + 1) == 1
    assert store.get_job(running.id).state == JobState.EXECUTING
    assert store.get_job(waiting.id).state == JobState.CANCELLED


def test_discard_takes_dead_and_waiting_jobs_never_running_ones(store):
    dead, running, waiting = job(), job(), job()
    store.enqueue([dead, running], now=T0)
    claim(store)
    store.enqueue([waiting], now=T0)
    store.bury(dead.id, 1, failure(), worker=OWNER, now=T0, reason="x")
    assert store.discard_jobs([dead.id, running.id, waiting.id], now=T0 + 1) == 2
    assert store.get_job(running.id).state == JobState.EXECUTING
    assert {store.get_job(i).state for i in (dead.id, waiting.id)} == {JobState.CANCELLED}


def test_a_discarded_job_keeps_its_run_time(store):
    # Given a job that died after running 1 ms and one that failed as fast and waits to retry
    dead, retrying = job(), job(max_attempts=3)
    store.enqueue([dead, retrying], now=T0)
    claim(store)
    store.bury(dead.id, 1, failure(started_at=T0), worker=OWNER, now=T0 + 0.001, reason="x")
    store.retry(retrying.id, 1, failure(started_at=T0), worker=OWNER, now=T0 + 0.001,
                run_at=T0 + 600, reason="x")
    # When both are discarded three minutes later
    assert store.discard_jobs([dead.id, retrying.id], now=T0 + 189) == 2
    # Then each still reads as the 1 ms run it was, not as a run up to the discard
    for job_id in (dead.id, retrying.id):
        row = store.get_job(job_id)
        assert row.state == JobState.CANCELLED
        assert (row.started_at, row.finished_at) == (T0, T0 + 0.001)
        assert row.duration == pytest.approx(0.001, abs=1e-6)


def test_a_cancelled_retrying_job_keeps_its_run_time(store):
    new = job(max_attempts=3)
    store.enqueue([new], now=T0)
    claim(store)
    store.retry(new.id, 1, failure(started_at=T0), worker=OWNER, now=T0 + 0.5,
                run_at=T0 + 600, reason="x")
    assert store.cancel_jobs([new.id], now=T0 + 60) == 1
    assert store.get_job(new.id).duration == pytest.approx(0.5)


def test_a_discarded_job_without_a_finished_attempt_ends_at_the_discard_with_no_run_time(store):
    # Given a job that never ran and one whose attempt was handed back unfinished (shutdown)
    never, handed_back = job(), job()
    store.enqueue([handed_back], now=T0)
    claim(store)
    store.hand_back(handed_back.id, 1, now=T0 + 1, reason="shutdown")
    store.enqueue([never], now=T0)
    # When both are discarded
    assert store.discard_jobs([never.id, handed_back.id], now=T0 + 189) == 2
    # Then they end at the discard, and no run time is made up for them
    for job_id in (never.id, handed_back.id):
        row = store.get_job(job_id)
        assert (row.state, row.finished_at, row.duration) == (JobState.CANCELLED, T0 + 189, None)


def test_a_discarded_job_is_pruned_by_the_age_of_its_last_run(store):
    # Given a job that died on day 0 and is discarded on day 3, and one discarded unrun on day 3
    day = 86400.0
    dead, never = job(), job()
    store.enqueue([dead], now=T0)
    claim(store)
    store.bury(dead.id, 1, failure(started_at=T0), worker=OWNER, now=T0 + 1, reason="x")
    store.enqueue([never], now=T0)
    store.discard_jobs([dead.id, never.id], now=T0 + 3 * day)
    # When retention keeps cancelled jobs one day
    section = RetentionSection(completed_days=1, dead_days=30, vacuum=False)
    store.prune_retention(section, now=T0 + 3 * day + 60)
    # Then the one that ran goes by the end of its run, the other by its discard
    assert {r.id for r in store.list_jobs(JobFilter(), limit=10)} == {never.id}


def test_retry_now_gives_a_finished_job_one_more_attempt(store):
    new = job()
    store.enqueue([new], now=T0)
    claim(store)
    store.bury(new.id, 1, failure(), worker=OWNER, now=T0, reason="x")
    assert store.retry_jobs([new.id], now=T0 + 5) == 1
    row = store.get_job(new.id)
    assert (row.state, row.max_attempts) == (JobState.AVAILABLE, 2)
    assert claim(store, now=T0 + 5) == [new.id]


# -- prune -------------------------------------------------------------------------------------


def test_prune_deletes_old_finished_jobs_with_their_errors_and_keeps_the_rest(store):
    day = 86400.0
    old_done, old_dead, recent_done, waiting = job(), job(), job(), job()
    store.enqueue([old_done, old_dead, recent_done], now=T0)
    claim(store)
    store.complete([Ack(old_done.id, 1, T0, T0)])
    store.bury(old_dead.id, 1, failure(), worker=OWNER, now=T0, reason="x")
    store.complete([Ack(recent_done.id, 1, T0, T0 + 3 * day)])
    store.enqueue([waiting], now=T0)
    section = RetentionSection(completed_days=1, dead_days=5, vacuum=False)
    report = store.prune_retention(section, now=T0 + 3.5 * day)
    assert report.deleted["jobs"] == 1
    remaining = {r.id for r in store.list_jobs(JobFilter(), limit=10)}
    assert remaining == {old_dead.id, recent_done.id, waiting.id}
    store.prune_retention(section, now=T0 + 6 * day)
    assert store.job_errors(old_dead.id) == []


def test_a_dry_run_counts_exactly_what_the_real_prune_deletes(store):
    # Given an old finished job, a worker stopped long ago, one still running and one
    # stopped recently
    day = 86400.0
    done = job()
    store.enqueue([done], now=T0)
    claim(store)
    store.complete([Ack(done.id, 1, T0, T0)])
    for owner in ("old-stopped", "running", "new-stopped"):
        store.register(owner, concurrency=1, queues=(), now=T0)
    store.mark_stopped("old-stopped", now=T0)
    store.heartbeat("running", [], lease_seconds=LEASE, now=T0 + 30 * day)
    store.heartbeat("new-stopped", [], lease_seconds=LEASE, now=T0 + 30 * day)
    store.mark_stopped("new-stopped", now=T0 + 30 * day)
    section = RetentionSection(vacuum=False)
    # When the dry run counts, and then the real run deletes
    dry = store.prune_retention(section, now=T0 + 30 * day + 60, dry_run=True)
    assert len(store.list_workers(include_stopped=True)) == 3
    real = store.prune_retention(section, now=T0 + 30 * day + 60)
    # Then both say the same, the old worker row included
    assert dry.deleted == real.deleted
    assert real.deleted["workers"] == 1 and real.deleted["jobs"] == 1
    assert {w.id for w in store.list_workers(include_stopped=True)} == {"running",
                                                                         "new-stopped"}


def test_a_job_is_found_by_a_unique_start_or_end_of_its_id(store):
    store.enqueue([job(job_id="job-01aa-first-xyz123"), job(job_id="job-01ab-second-abc789")],
                  now=T0)
    assert store.get_job("job-01aa").id == "job-01aa-first-xyz123"
    assert store.get_job("abc789").id == "job-01ab-second-abc789"
    with pytest.raises(JobNotFound):
        store.get_job("job-01")  # both start so: ambiguous
    with pytest.raises(JobNotFound):
        store.get_job("nothing-like-it")


def test_fields_holding_separators_and_odd_bytes_read_back_unchanged(store):
    from dataclasses import replace

    odd = replace(job(job_id="id:with:colons", unique_key="key:1\x1f2"),
                  args="('a:b', '-1:', 'ünï')", data=b"\x00-1:\xff")
    store.enqueue([odd], now=T0)
    row = store.get_job("id:with:colons")
    assert (row.args, row.queue, row.task) == (odd.args, odd.queue, odd.task)
    [claimed] = store.claim(now=T0, owner=OWNER, lease_seconds=LEASE, want=1).claimed
    assert claimed.data == odd.data
    again = job(unique_key="key:1\x1f2")
    assert store.enqueue([again], now=T0).duplicates == {again.id: "id:with:colons"}


def test_a_jobs_state_is_read_alone_and_none_for_no_such_job(store):
    new = job()
    store.enqueue([new], now=T0)
    assert store.job_state(new.id) == JobState.AVAILABLE
    claim(store)
    store.complete([Ack(new.id, 1, T0, T0 + 1)])
    assert store.job_state(new.id) == JobState.COMPLETED
    assert store.job_state("no-such-job") is None
