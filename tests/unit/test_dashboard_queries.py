"""The dashboard's reads (runner.dashboard_*), without Textual, on a real database."""

from __future__ import annotations

import sqlite3

import pytest

from runner import control
from runner.readmodel import dashboard as dq
from runner.readmodel.events import event_views, unhandled_event_count
from runner.readmodel.failures import failure_groups
from runner.readmodel.schedules import schedule_count, schedule_views
from runner.store.backend import Store
from runner.store.factory import open_store
from runner.store.sqlite.integrity import index_hint
from runner.store.sqlite.queries import JobFilter
from runner.testing import drain
from tests import jobs


def seed(huey):
    done = [jobs.add(i, i).id for i in range(3)]
    drain()
    dead = jobs.always_fails("q").id
    drain(include_scheduled=True)
    fatal = jobs.fatal_fails().id
    drain()
    waiting = [jobs.noop(i).id for i in range(4)]
    return done, dead, fatal, waiting


def reader(huey) -> Store:
    # As the dashboard does (tui.source): a writer moves the jobs of the intake first.
    huey.jobs.store.absorb_intake()
    return open_store(huey.jobs.path, readonly=True)


def test_summary_counts_match_the_states_table(huey):
    seed(huey)
    store = reader(huey)
    s = dq.summary(store)
    states = huey.jobs.store.counts_by_state()
    assert (s.waiting, s.running, s.scheduled, s.retrying, s.dead) == (
        states["available"], states["executing"], states["scheduled"], states["retrying"],
        states["dead"]) == (4, 0, 0, 0, 2)
    # 3 completions and 4 failed attempts (3 of always_fails, 1 of fatal_fails) this hour
    assert s.error_rate == 4 / 7
    assert s.oldest_waiting_age is not None and s.oldest_waiting_age >= 0


def test_throughput_buckets_by_clock_minute(huey):
    seed(huey)
    completed, failed = dq.throughput(reader(huey), minutes=60)
    assert len(completed) == len(failed) == 60
    assert sum(completed) == 3 and sum(failed) == 4
    later_completed, _ = dq.throughput(reader(huey), now=__import__("time").time() + 7200)
    assert sum(later_completed) == 0


def test_worker_loads_are_empty_without_workers(huey):
    seed(huey)
    assert dq.worker_loads(reader(huey)) == []


def test_job_page_filters_and_pages_newest_first(huey):
    done, dead, fatal, waiting = seed(huey)
    store = reader(huey)
    page = dq.job_page(store, limit=3)
    assert [j.id for j in page.jobs] == waiting[::-1][:3]
    assert [j.id for j in dq.job_page(store, limit=3, after=page.next_key).jobs][0] == waiting[0]
    assert {j.id for j in dq.job_page(store, JobFilter(state="dead")).jobs} == {dead, fatal}
    assert [j.id for j in dq.job_page(store, JobFilter(task="add")).jobs] == done[::-1]
    assert [j.id for j in dq.job_page(store, JobFilter(text="always fails")).jobs] == [dead]
    assert dq.count_jobs_capped(store, JobFilter(state="available")) == (4, False)
    assert dq.count_jobs_capped(store, cap=5) == (5, True)


def test_job_detail_has_every_attempt_with_its_traceback(huey):
    _, dead, _, _ = seed(huey)
    detail = dq.job_detail(reader(huey), dead)
    assert detail.job.state == "dead"
    assert [e.attempt for e in detail.errors] == [1, 2, 3]
    assert all("ValueError: always fails q" in e.traceback for e in detail.errors)


def test_failure_groups_group_by_type_and_message(huey):
    _, dead, fatal, _ = seed(huey)
    jobs.always_fails("q")
    drain(include_scheduled=True)
    store = reader(huey)
    groups = failure_groups(store)
    assert [(g.error_type, g.count, g.dead) for g in groups] == [
        ("ValueError", 2, 2), ("Fatal", 1, 1)]
    # A group's action takes that group's jobs alone
    writer = huey.jobs.store
    plan = control.plan_failure_group(writer, "retry", groups[1].error_type,
                                      [groups[1].message])
    assert plan.count == 1
    assert control.run_failure_group(writer, plan) == 1
    assert writer.get_job(fatal).state == "available"
    assert writer.get_job(dead).state == "dead"


def test_optional_tables_read_as_empty_when_missing(huey):
    seed(huey)
    store = reader(huey)
    if not dq.has_table(store, "runner_log"):
        assert dq.tail_logs(store) == []
    if not dq.has_table(store, "runner_schedule"):
        assert schedule_views(store) == [] and schedule_count(store) == 0
    if not dq.has_table(store, "runner_event"):
        assert event_views(store) == [] and unhandled_event_count(store) == 0


def test_reads_leave_no_snapshot_open(huey):
    seed(huey)
    store = reader(huey)
    dq.summary(store)
    dq.job_page(store)
    failure_groups(store)
    assert not store.db.connection().in_transaction
    jobs.noop(99)  # a write after the reads lands in the WAL
    other = sqlite3.connect(huey.jobs.path)
    busy, log, checkpointed = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    other.close()
    assert busy == 0 and log == checkpointed


def test_a_database_without_the_dashboard_indexes_still_reads(huey):
    _, dead, fatal, _ = seed(huey)
    conn = sqlite3.connect(huey.jobs.path)
    conn.execute("DROP INDEX runner_job_failure")
    conn.execute("DROP INDEX IF EXISTS runner_event_unhandled")
    conn.commit()
    conn.close()
    store = reader(huey)
    assert index_hint(store.db, "runner_job_failure") == ""
    assert {g.error_type for g in failure_groups(store)} == {"ValueError", "Fatal"}
    assert unhandled_event_count(store) == 0


def test_log_search_matches_percent_and_underscore_literally(huey):
    from runner.store.sqlite.logs import insert_logs

    store = huey.jobs.store
    store.db.write(lambda c: insert_logs(c, [(1.0, 20, "app", "disk 100% full", None, None, "w"),
                                       (2.0, 20, "app", "disk 1000 ok", None, None, "w"),
                                       (3.0, 20, "app", "user_id set", None, None, "w"),
                                       (4.0, 20, "app", "userXid set", None, None, "w")]))
    assert [r.message for r in dq.tail_logs(store, text="100%")] == ["disk 100% full"]
    assert [r.message for r in dq.tail_logs(store, text="user_id")] == ["user_id set"]


def timed_jobs(huey, count: int, start: float = 1_700_000_000.0) -> list[str]:
    """``count`` waiting jobs created one minute apart from ``start``, oldest first."""
    ids = [jobs.noop(i).id for i in range(count)]
    huey.jobs.db.write(lambda c: c.executemany(
        "UPDATE runner_job SET created_at = ? WHERE id = ?",
        [(start + 60 * i, job_id) for i, job_id in enumerate(ids)]))
    return ids


def every_page(store, filters=None, **options) -> list[list[str]]:
    pages, key = [], None
    while True:
        page = dq.job_page(store, filters, limit=10, after=key, **options)
        pages.append([j.id for j in page.jobs])
        key = page.next_key
        if key is None:
            return pages


@pytest.mark.parametrize("filters", [None, JobFilter(state="available")],
                         ids=["insertion order", "state index order"])
def test_keyset_pages_reach_the_last_job_both_ways(huey, filters):
    ids = timed_jobs(huey, 25)
    store = reader(huey)
    newest = every_page(store, filters)
    assert [len(p) for p in newest] == [10, 10, 5]
    assert sum(newest, []) == ids[::-1]
    assert sum(every_page(store, filters, oldest_first=True), []) == ids


@pytest.mark.parametrize("filters", [None, JobFilter(state="available")],
                         ids=["insertion order", "state index order"])
def test_a_page_starts_at_a_time(huey, filters):
    start = 1_700_000_000.0
    ids = timed_jobs(huey, 25, start)
    store = reader(huey)
    at = start + 10 * 60 + 30  # between job 10 and job 11
    key = dq.page_key_at(store, at, filters)
    assert [j.id for j in dq.job_page(store, filters, limit=3, after=key).jobs] == ids[10:7:-1]
    key = dq.page_key_at(store, at, filters, oldest_first=True)
    assert [j.id for j in dq.job_page(store, filters, limit=3, after=key,
                                      oldest_first=True).jobs] == ids[11:14]
    before_all = dq.page_key_at(store, start - 1, filters)
    assert dq.job_page(store, filters, after=before_all).jobs == []


def test_summary_with_a_first_queue_that_has_nothing_due(huey):
    from tests.tui import dashboard_jobs

    jobs.noop.schedule(args=(1,), delay=3600)  # 'default' sorts first; nothing due there
    dashboard_jobs.send_mail("due@example.com")
    s = dq.summary(reader(huey))
    assert (s.waiting, s.scheduled) == (1, 1) and s.oldest_waiting_age is not None
