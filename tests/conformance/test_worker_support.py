"""What a worker needs of every backend beside the job life cycle: huey's key/value store,
named leases, wake-ups, the record of started attempts, stuck attempts, the panel reads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from runner.readmodel.health import HealthReport, evaluate, gather
from runner.store.backend import Store
from runner.store.job_rows import FailureInfo
from runner.store.rows import JobFilter
from runner.store.sqlite import SqliteStore
from runner.store.states import JobState
from tests.conformance.helpers import OWNER, T0, failure, job
from tests.conftest import wait_for

LEASE = 30.0


def claim(store: Store, owner: str = OWNER, now: float = T0, want: int = 10) -> list[str]:
    return [c.id for c in store.claim(now=now, owner=owner, lease_seconds=LEASE,
                                      want=want).claimed]


# -- huey's key/value store ------------------------------------------------------------


def test_a_stored_value_is_read_popped_and_gone(store):
    store.kv_put("result-1", b"one")
    assert store.kv_peek("result-1", now=T0) == b"one"
    assert store.kv_peek_many(["result-1", "missing"], now=T0) == {"result-1": b"one"}
    assert store.kv_pop("result-1", now=T0) == b"one"
    assert store.kv_pop("result-1", now=T0) is None
    assert store.kv_peek("result-1", now=T0) is None


def test_a_lock_is_taken_once_until_it_expires(store):
    assert store.kv_put_if_empty("lock", b"a", ttl=10.0, now=T0)
    assert not store.kv_put_if_empty("lock", b"b", ttl=10.0, now=T0 + 5)
    assert store.kv_peek("lock", now=T0 + 11) is None  # expired: reads as missing
    assert store.kv_put_if_empty("lock", b"b", ttl=10.0, now=T0 + 11)
    assert store.kv_peek("lock", now=T0 + 12) == b"b"
    assert store.kv_delete("lock", now=T0 + 12)
    assert not store.kv_delete("lock", now=T0 + 12)


def test_keys_are_listed_counted_and_flushed(store):
    store.kv_put("a", b"1")
    store.kv_put("b", b"2")
    assert store.kv_items() == {"a": b"1", "b": b"2"} and store.kv_count() == 2
    store.kv_flush()
    assert store.kv_items() == {} and store.kv_count() == 0


def test_counters_add_up_and_are_forgotten(store):
    assert store.counter_incr("c") == 1
    assert store.counter_incr("c", 5) == 6
    store.counter_delete("c")
    assert store.counter_incr("c") == 1
    store.counter_flush()
    assert store.counter_incr("c", 2) == 2


def test_waiting_jobs_are_sized_and_listed_by_due_time(store):
    store.enqueue([job(T0 - 1), job(T0 + 60)], now=T0)
    assert store.waiting_size(now=T0, due=True) == 1
    assert store.waiting_size(now=T0, due=False) == 1
    assert store.waiting_payloads(now=T0, due=True, limit=None) == [b"payload"]
    assert store.waiting_payloads(now=T0 + 120, due=True, limit=1) == [b"payload"]


# -- named leases ------------------------------------------------------------------------


def test_a_lease_has_one_holder_until_it_expires_or_is_released(store):
    assert store.take_lease("exporter", "a", 15.0, now=T0)
    assert not store.take_lease("exporter", "b", 15.0, now=T0 + 5)
    assert store.take_lease("exporter", "a", 15.0, now=T0 + 10)  # renewed to T0 + 25
    assert not store.take_lease("exporter", "b", 15.0, now=T0 + 24)
    assert store.take_lease("exporter", "b", 15.0, now=T0 + 26)
    store.release_lease("exporter", "a")  # not a's any more: nothing changes
    assert not store.take_lease("exporter", "a", 15.0, now=T0 + 27)
    store.release_lease("exporter", "b")
    assert store.take_lease("exporter", "a", 15.0, now=T0 + 27)


# -- clocks ------------------------------------------------------------------------------


def test_a_server_tells_its_own_clock_and_a_file_has_none_but_this_hosts(store):
    before = time.time()
    clock = store.server_time()
    after = time.time()
    if isinstance(store, SqliteStore):
        assert clock is None
    else:  # the test servers run on this host, on its clock
        assert before - 1 <= clock <= after + 1


def test_a_workers_clock_offset_is_listed_with_it_until_it_registers_again(store):
    store.register(OWNER, concurrency=1, queues=(), clock_offset=-0.5, now=T0)
    assert store.list_workers()[0].clock_offset == -0.5
    store.heartbeat(OWNER, [], lease_seconds=LEASE, clock_offset=42.25, now=T0 + 1)
    store.heartbeat(OWNER, [], lease_seconds=LEASE, now=T0 + 2)  # not measured this time
    assert store.list_workers()[0].clock_offset == 42.25
    store.register(OWNER, concurrency=1, queues=(), now=T0 + 3)
    assert store.list_workers()[0].clock_offset is None


def test_a_worker_not_measured_yet_lists_no_memory_or_cpu_rather_than_zeros(store):
    # Registered: the row exists before the lifeline's first beat measures the process
    store.register(OWNER, concurrency=1, queues=(), now=T0)
    row = store.list_workers()[0]
    assert (row.rss_bytes, row.cpu_percent) == (None, None)
    store.heartbeat(OWNER, [], lease_seconds=LEASE, rss_bytes=50 * 2**20, cpu_percent=0.0,
                    now=T0 + 1)
    row = store.list_workers()[0]
    assert (row.rss_bytes, row.cpu_percent) == (50 * 2**20, 0.0)  # an idle worker: a real 0
    store.register(OWNER, concurrency=1, queues=(), now=T0 + 2)  # the same id started again
    row = store.list_workers()[0]
    assert (row.rss_bytes, row.cpu_percent) == (None, None)


def test_health_names_a_worker_whose_clock_is_off_and_ages_its_heartbeat_by_the_server(
        store):
    # A worker 120 s behind the server beat 2 s ago by the server's clock (T0).
    store.register(OWNER, concurrency=1, queues=(), clock_offset=-120.0, now=T0 - 122.0)
    facts = gather(store, quick_check=False, now=T0, heartbeat_max_age=10.0)
    assert facts.newest_heartbeat_age == pytest.approx(2.0)
    assert facts.clock_offsets == {"worker-host-a": -120.0}
    report = evaluate(facts, heartbeat_max_age=10.0, max_waiting_age=600.0,
                      max_schedule_lag=300.0, max_clock_drift=15.0)
    assert report == HealthReport(False, "clock drift: worker-host-a's clock is 2m00s behind "
                                         "the server's (limit 15.0s)")


def test_the_scrape_counts_workers_by_the_age_of_their_heartbeat_on_the_servers_clock(
        store):
    # One worker 120 s behind the server beat 2 s ago by the server's clock (T0), one
    # 120 s ahead 20 s ago: only the first is fresh at a 15 s limit, whatever they wrote.
    store.register(OWNER, concurrency=1, queues=(), clock_offset=-120.0, now=T0 - 122.0)
    assert store.read_snapshot(now=T0, heartbeat_limit=15.0).workers == 1
    store.register("worker-host-b:2:1", concurrency=1, queues=(), clock_offset=120.0,
                   now=T0 + 100.0)
    assert store.read_snapshot(now=T0, heartbeat_limit=15.0).workers == 1


def test_a_scrape_without_a_time_reads_the_servers_clock(store):
    before = time.time()
    at = store.read_snapshot().at
    assert before - 1 <= at <= time.time() + 1  # the test servers run on this host


# -- wake-ups ----------------------------------------------------------------------------


def test_a_wakeup_from_another_handle_reaches_a_listener(store, another):
    woken = threading.Event()
    stop = store.listen(woken.set)
    assert stop is not None, "this backend has no wake-ups"
    producer = another()
    try:
        # A wake-up sent before the listener is ready may be lost; the worker's poll covers
        # that, so keep poking until one arrives.
        wait_for(lambda: producer.wakeup() or woken.wait(0.05), timeout=10.0,
                 message="a wake-up")
    finally:
        stop()
        producer.close()


# -- the attempts a worker started -------------------------------------------------------


def _dead_owner_on_this_host() -> str:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return f"{socket.gethostname()}:{int(child.stdout)}:1"


def test_only_attempts_a_dead_worker_started_are_charged_a_crash(store):
    owner = _dead_owner_on_this_host()
    started, prefetched = job(), job()
    store.enqueue([started, prefetched], now=T0)
    assert sorted(claim(store, owner=owner)) == sorted([started.id, prefetched.id])
    log = store.attempt_log(owner)
    log.started(started.id, 1)
    log.close(remove=False)  # the process died: nothing was cleaned up
    store.recover_orphans(crash_limit=3, now=T0 + 1)
    assert store.get_job(started.id).crashes == 1
    charged = store.get_job(prefetched.id)
    assert (charged.state, charged.crashes) == (JobState.AVAILABLE, 0)


def test_a_settled_attempt_is_not_charged(store):
    owner = _dead_owner_on_this_host()
    new = job()
    store.enqueue([new], now=T0)
    claim(store, owner=owner)
    log = store.attempt_log(owner)
    log.started(new.id, 1)
    log.settled([new.id])
    log.close(remove=False)
    store.recover_orphans(crash_limit=3, now=T0 + 1)
    assert store.get_job(new.id).crashes == 0


def test_a_live_workers_attempt_it_never_started_goes_back_uncharged_once_its_lease_expires(
        store):
    # Given a job a live worker claimed ahead and never started (it stalled past its lease)
    me = f"{socket.gethostname()}:{os.getpid()}:1"
    new = job()
    store.enqueue([new], now=T0)
    claim(store, owner=me)
    log = store.attempt_log(me)
    # When a recovery pass finds the lease expired
    assert store.recover_orphans(crash_limit=1, me=me, now=T0 + LEASE + 1).requeued == [new.id]
    # Then the job goes back as if never claimed: no crash, no error, not buried
    row = store.get_job(new.id)
    assert (row.state, row.attempt, row.crashes) == (JobState.AVAILABLE, 0, 0)
    assert row.reason == "its worker was not running it when its lease expired; requeued"
    assert store.job_errors(new.id) == []
    log.close()


# -- a stuck attempt ---------------------------------------------------------------------


def stuck(started_at: float = T0) -> FailureInfo:
    return FailureInfo(kind="timeout", error_type="JobStuck", message="did not stop",
                       traceback="", started_at=started_at)


def test_a_stuck_attempt_with_retries_left_is_retried_as_a_timeout_not_a_crash(store):
    # Given a running attempt whose task has retries left
    new = job(max_attempts=3)
    store.enqueue([new], now=T0)
    claim(store)
    # When its thread is written off past its timeout, with its next attempt due at T0 + 10
    state = store.charge_stuck(new.id, 1, OWNER, stuck(), run_at=T0 + 10, data=b"next",
                               reason="retry at 00:00:10 UTC", now=T0 + 5)
    # Then it is retrying: a failed attempt of kind timeout, no crash, not a suspect
    assert state == JobState.RETRYING
    row = store.get_job(new.id)
    assert (row.state, row.crashes, row.failures, row.run_at) == (
        JobState.RETRYING, 0, 1, T0 + 10)
    assert (row.error_type, row.reason) == ("JobStuck", "retry at 00:00:10 UTC")
    assert store.job_payload(new.id) == b"next"
    assert [(e.kind, e.error_type) for e in store.job_errors(new.id)] == [
        ("timeout", "JobStuck")]
    # and written once: that attempt no longer runs
    assert store.charge_stuck(new.id, 1, OWNER, stuck(), now=T0 + 6) is None
    assert len(store.job_errors(new.id)) == 1


def test_a_stuck_attempt_without_retries_left_is_dead_at_once(store):
    new = job(max_attempts=1)
    store.enqueue([new], now=T0)
    claim(store)
    state = store.charge_stuck(new.id, 1, OWNER, stuck(), reason="timeout: did not stop",
                               now=T0 + 5)
    assert state == JobState.DEAD
    row = store.get_job(new.id)
    assert (row.state, row.crashes, row.failures, row.finished_at) == (
        JobState.DEAD, 0, 1, T0 + 5)
    assert (row.error_type, row.error_message) == ("JobStuck", "did not stop")
    assert [e.kind for e in store.job_errors(new.id)] == ["timeout"]
    assert store.claim(now=T0 + 6, owner=OWNER, lease_seconds=60, want=1).claimed == []


def test_a_stuck_attempt_someone_cancelled_ends_cancelled_and_never_runs_again(store):
    # Given a running attempt someone asked to cancel, which its worker could not stop
    running = job(max_attempts=3)
    store.enqueue([running], now=T0)
    claim(store)
    assert store.request_cancel(running.id, by="alice", now=T0 + 1) == JobState.EXECUTING
    # When its thread is written off past its timeout
    state = store.charge_stuck(running.id, 1, OWNER, stuck(), run_at=T0 + 10, now=T0 + 5)
    # Then the cancel is carried out: no crash charged, not requeued, the cancel's reason
    assert state == JobState.CANCELLED
    row = store.get_job(running.id)
    assert (row.state, row.crashes, row.finished_at) == (JobState.CANCELLED, 0, T0 + 5)
    assert row.reason == "cancelled by alice while running"
    assert store.claim(now=T0 + 6, owner=OWNER, lease_seconds=60, want=1).claimed == []
    assert store.cancel_requests([running.id]) == {}


# -- the dashboard's reads ---------------------------------------------------------------


def test_the_summary_counts_the_live_states(store):
    store.enqueue([job(T0 - 5), job(T0 - 1, queue="mail"), job(T0 + 60)], now=T0)
    summary = store.summary(T0)
    # "waiting" is ready now: the job due later is counted apart
    assert (summary.waiting, summary.scheduled, summary.running) == (2, 1, 0)
    assert summary.oldest_waiting_age == 5.0


def test_the_summary_counts_dead_jobs_up_to_its_limit_and_says_so(store):
    # The count of dead jobs grows with history: the strip reads no further than a limit.
    dead = [job() for _ in range(3)]
    store.enqueue(dead, now=T0)
    for claimed in store.claim(now=T0, owner=OWNER, lease_seconds=30, want=3).claimed:
        store.bury(claimed.id, 1, failure(), worker=OWNER, now=T0, reason=None)
    assert (store.summary(T0).dead, store.summary(T0).dead_capped) == (3, False)
    assert (store.summary(T0, dead_limit=3).dead,
            store.summary(T0, dead_limit=3).dead_capped) == (3, False)
    capped = store.summary(T0, dead_limit=2)
    assert (capped.dead, capped.dead_capped) == (2, True)


def test_keyset_pages_walk_every_job_once(store):
    ids = []
    for i in range(7):
        new = job(T0 + i)
        store.enqueue([new], now=T0 + i)
        ids.append(new.id)
    seen, key = [], None
    while True:
        page = store.keyset_page(JobFilter(), limit=3, after=key)
        seen += [j.id for j in page.jobs]
        if page.next_key is None:
            break
        key = page.next_key
    assert seen == ids[::-1]


def test_a_dead_idle_worker_of_this_node_is_marked_dead_under_a_node_name(store):
    # Given two workers of one node named "node2" (RUNNER_NODE_NAME), the first one's
    # process gone (a pid no process has), the second alive (this test's own)
    import os
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead, me = f"node2:{int(gone.stdout)}:1", f"node2:{os.getpid()}:2"
    store.register(dead, concurrency=1, queues=(), now=T0)
    store.register(me, concurrency=1, queues=(), now=T0)
    # When the live one looks for orphans
    store.recover_orphans(crash_limit=3, me=me, now=T0 + 1)
    # Then the dead one is marked dead at once, as on every backend
    states = {w.id: w.state for w in store.list_workers(include_stopped=True)}
    assert states == {dead: "dead", me: "running"}, states


def test_a_heartbeat_says_when_the_workers_row_is_gone_and_registering_brings_it_back(store):
    # Given a worker whose row went with the data (a restore, a prefix emptied)
    store.register(OWNER, concurrency=1, queues=(), now=T0)
    assert store.heartbeat(OWNER, [], lease_seconds=30, now=T0 + 1).known
    store.mark_stopped(OWNER, now=T0 + 2)
    assert store.prune_workers(older_than=1, now=T0 + 3600) == 1
    assert store.list_workers(include_stopped=True) == []
    # When it beats, Then it learns so; and once registered again it is listed
    assert not store.heartbeat(OWNER, [], lease_seconds=30, now=T0 + 3601).known
    store.register(OWNER, concurrency=1, queues=(), now=T0 + 3602)
    assert store.heartbeat(OWNER, [], lease_seconds=30, now=T0 + 3603).known
    assert [w.id for w in store.list_workers()] == [OWNER]


def test_the_jobs_of_a_worker_known_gone_are_stalled_however_fresh_its_heartbeat(store):
    # Given a job run by a worker whose heartbeat is fresh
    store.register(OWNER, concurrency=1, queues=(), now=T0)
    store.enqueue([job()], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=60, want=1)
    store.heartbeat(OWNER, [], lease_seconds=60, now=T0 + 1)
    assert store.stalled_count(T0 + 2, 15.0) == 0
    assert store.summary(T0 + 2, stale_after=15.0).running == 1
    # When its process is known gone (this host's), Then its job is stalled, not running
    assert store.stalled_count(T0 + 2, 15.0, gone=[OWNER]) == 1
    found = store.summary(T0 + 2, stale_after=15.0, gone=[OWNER])
    assert (found.running, found.stalled) == (0, 1)
