"""Bulk actions by filter (the CLI's retry/discard/cancel with a filter, the dashboard's R
and D): every backend counts the same set and changes exactly it."""

from __future__ import annotations

from runner import control
from runner.store.job_rows import Ack
from runner.store.rows import JobFilter
from tests.conformance.helpers import OWNER, T0, failure, job

SEND, OTHER = "tests.jobs.send", "tests.jobs.other"


def _fail(store, jobs, message="boom", *, retry=False):
    store.enqueue(jobs, now=T0)
    claimed = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=len(jobs)).claimed
    assert {c.id for c in claimed} == {j.id for j in jobs}
    for c in claimed:
        if retry:
            store.retry(c.id, c.attempt, failure(message), worker=OWNER, now=T0,
                        run_at=T0 + 3600, reason="x")
        else:
            store.bury(c.id, c.attempt, failure(message), worker=OWNER, now=T0, reason="x")


def test_a_bulk_retry_changes_exactly_the_failed_jobs_it_counted(store):
    # Given failed, finished and waiting jobs of two tasks in two queues
    dead_mail = [job(queue="mail", task=SEND) for _ in range(3)]
    _fail(store, dead_mail)
    dead_other = [job(task=OTHER) for _ in range(2)]
    _fail(store, dead_other)
    retrying = job(task=SEND, max_attempts=3)
    _fail(store, [retrying], "Unique Refusal", retry=True)
    done = job(task=SEND)
    store.enqueue([done], now=T0)
    [c] = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1).claimed
    store.complete([Ack(c.id, c.attempt, T0, T0 + 1)])
    waiting = job(task=SEND)
    store.enqueue([waiting], now=T0)
    # When the failed jobs of one task are counted
    plan = control.plan_bulk(store, "retry", JobFilter(task=SEND))
    assert plan.count == 4
    # and one more of them dies after the count
    late = job(task=SEND, priority=10)  # claimed before the waiting job
    _fail(store, [late])
    # Then the retry changes the four counted, oldest first, and nothing else
    assert control.run_bulk(store, plan, chunk=3) == 4
    assert {store.get_job(j.id).state for j in [*dead_mail, retrying]} == {"available"}
    assert [store.get_job(j.id).state for j in (late, done, waiting, *dead_other)] == [
        "dead", "completed", "available", "dead", "dead"]


def test_a_bulk_action_by_queue_state_or_text_counts_the_same_set_everywhere(store):
    dead_mail = [job(queue="mail", task=SEND) for _ in range(2)]
    _fail(store, dead_mail, "Refused by DB-7")
    dead_default = [job(task=OTHER) for _ in range(3)]
    _fail(store, dead_default)
    waiting = [job(queue="mail") for _ in range(2)]
    store.enqueue(waiting, now=T0)
    for verb, filters, count in (("discard", JobFilter(queue="mail"), 4),
                                 ("discard", JobFilter(queue="mail", state="dead"), 2),
                                 ("retry", JobFilter(state="dead"), 5),
                                 ("retry", JobFilter(text="refused by db-7"), 2),
                                 ("cancel", JobFilter(queue="mail"), 2)):
        assert control.plan_bulk(store, verb, filters).count == count, (verb, filters)
    plan = control.plan_bulk(store, "discard", JobFilter(queue="mail", state="dead"))
    assert control.run_bulk(store, plan) == 2
    assert {store.get_job(j.id).state for j in dead_mail} == {"cancelled"}
    assert {store.get_job(j.id).state for j in [*waiting]} == {"available"}


def test_a_bulk_discard_keeps_each_jobs_run_time(store):
    # Given jobs that died 1 ms into their run
    dead = [job(task=SEND) for _ in range(3)]
    store.enqueue(dead, now=T0)
    for c in store.claim(now=T0, owner=OWNER, lease_seconds=30, want=3).claimed:
        store.bury(c.id, c.attempt, failure(started_at=T0), worker=OWNER, now=T0 + 0.001,
                   reason="x")
    # When they are discarded by filter
    plan = control.plan_bulk(store, "discard", JobFilter(task=SEND))
    assert control.run_bulk(store, plan, chunk=2) == 3
    # Then each still ran 1 ms
    for j in dead:
        row = store.get_job(j.id)
        assert (row.state, row.finished_at) == ("cancelled", T0 + 0.001)


def test_a_bulk_cancel_asks_the_workers_of_the_running_jobs_it_counted(store):
    # Given running and waiting jobs of one task, and a job of another task running
    running = [job(task=SEND, priority=10) for _ in range(2)]
    other = job(task=OTHER, priority=10)
    store.enqueue([*running, other], now=T0)
    assert len(store.claim(now=T0, owner=OWNER, lease_seconds=60, want=3).claimed) == 3
    waiting = [job(task=SEND) for _ in range(3)]
    store.enqueue(waiting, now=T0)
    # When the task's jobs are cancelled by filter, and when only its running ones are
    assert control.plan_bulk(store, "cancel", JobFilter(state="executing")).count == 3
    plan = control.plan_bulk(store, "cancel", JobFilter(task=SEND))
    assert plan.count == 5
    # a job started after the count is left alone
    late = job(task=SEND, priority=20)
    store.enqueue([late], now=T0)
    assert [c.id for c in store.claim(now=T0, owner=OWNER, lease_seconds=60,
                                      want=1).claimed] == [late.id]
    assert control.run_bulk(store, plan, by="alice") == 5
    # Then the waiting ones are cancelled, and the running ones' workers asked to stop them
    assert {store.get_job(j.id).state for j in waiting} == {"cancelled"}
    assert store.cancel_requests([j.id for j in (*running, other, late)]) == {
        j.id: "alice" for j in running}


def test_a_cancel_names_who_asked_whether_by_id_by_ids_or_by_filter(store):
    # Given waiting jobs of one task, due later
    by_id, by_ids, by_filter = job(task=SEND), job(task=SEND), job(task=SEND)
    # When one is cancelled by id, one among ids and the last by a filter
    store.enqueue([by_id], now=T0)
    control.cancel_job(store, by_id.id, by="alice@host (cli)", now=T0)
    store.enqueue([by_ids], now=T0)
    control.cancel_jobs(store, [by_ids.id], by="alice@host (cli)", now=T0)
    store.enqueue([by_filter], now=T0)
    plan = control.plan_bulk(store, "cancel", JobFilter(task=SEND))
    assert control.run_bulk(store, plan, by="alice@host (cli)") == 1
    # Then each records the same asker (a quote in the name is kept as it is)
    assert [store.get_job(j.id).reason for j in (by_id, by_ids, by_filter)] == [
        "cancelled by alice@host (cli)"] * 3
    odd = job(task=OTHER)
    store.enqueue([odd], now=T0)
    plan = control.plan_bulk(store, "cancel", JobFilter(task=OTHER))
    assert control.run_bulk(store, plan, by="o'brien@host") == 1
    assert store.get_job(odd.id).reason == "cancelled by o'brien@host"
