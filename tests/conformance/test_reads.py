"""The reads of the CLI and the dashboard: filters, searches and pages mean the same on
every backend."""

from __future__ import annotations

import dataclasses

from runner.service_sections import RetentionSection
from runner.store.job_rows import Ack
from runner.store.rows import JobFilter, attempt_text
from tests.conformance.helpers import OWNER, T0, failure, job


def test_a_text_search_finds_jobs_whatever_the_case(store):
    # Given jobs whose task, arguments and error hold capitals
    greeting = dataclasses.replace(job(T0, task="tests.jobs.Report"),
                                   args='{"args": ["Hello World"]}')
    failing = job(T0)
    other = job(T0)
    store.enqueue([greeting, failing, other], now=T0)
    [claimed] = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1).claimed
    assert claimed.id == greeting.id
    # the greeting's job fails with a capitalised message
    store.bury(greeting.id, 1, failure("Connection Refused"), worker=OWNER, now=T0, reason="x")

    # When the search is typed in another case, Then it finds them all the same
    for text in ("hello world", "HELLO", "report", "connection refused"):
        found = JobFilter(text=text)
        assert [j.id for j in store.list_jobs(found)] == [greeting.id], text
        assert store.count_jobs(found) == 1, text
        assert store.count_jobs_capped(found, cap=10) == (1, False), text
        assert [j.id for j in store.keyset_page(found).jobs] == [greeting.id], text
        assert store.job_ids(found) == [greeting.id], text


def test_an_error_search_finds_a_part_of_the_error_type_or_message_whatever_the_case(store):
    # Given a job that failed with a ValueError "Connection Refused", and one whose
    # arguments, not its error, hold the same words
    failing = job(T0)
    mentions = dataclasses.replace(job(T0), args='{"args": ["ValueError: refused"]}')
    store.enqueue([failing, mentions], now=T0)
    [claimed] = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1).claimed
    assert claimed.id == failing.id
    store.bury(failing.id, 1, failure("Connection Refused"), worker=OWNER, now=T0, reason="x")

    # When a part of its type or message is searched in another case, Then only it is found
    for text in ("valueerror", "VALUE", "refused", "connection refused"):
        found = JobFilter(error_text=text)
        assert [j.id for j in store.list_jobs(found)] == [failing.id], text
        assert store.count_jobs_capped(found, cap=10) == (1, False), text
        assert [j.id for j in store.keyset_page(found).jobs] == [failing.id], text
        assert [j.id for j in store.keyset_page(found, sort="attempts", now=T0).jobs] == [
            failing.id], text
        assert store.job_ids(found) == [failing.id], text
    # And what no error holds finds nothing, nor does it match across type and message
    for text in ("timeout", "ValueError: Connection"):
        assert store.list_jobs(JobFilter(error_text=text)) == [], text


def test_a_log_search_finds_lines_whatever_the_case(store):
    store.write_logs([(T0, 40, "app.Billing", "Payment FAILED for order 7", None, None, OWNER),
                      (T0, 20, "app", "all good", None, None, OWNER)])
    for text in ("payment failed", "PAYMENT", "billing"):
        assert [r.message for r in store.tail_logs(text=text)] == [
            "Payment FAILED for order 7"], text


def _walk(store, filters: JobFilter, *, oldest_first: bool) -> list[str]:
    seen, key = [], None
    while True:
        page = store.keyset_page(filters, limit=2, after=key, oldest_first=oldest_first)
        seen += [j.id for j in page.jobs]
        if page.next_key is None:
            return seen
        key = page.next_key


def test_pages_of_a_filter_walk_its_jobs_once_either_way(store):
    # Given waiting jobs in three states among others, written one after another
    ids: dict[str, list[str]] = {"waiting": [], "mail": [], "all": []}
    for i in range(9):
        new = job(T0 + i + (3600 if i % 3 == 1 else 0), queue="mail" if i % 2 else "default",
                  max_attempts=3)
        store.enqueue([new], now=T0 + i)
        ids["all"].append(new.id)
        if i % 2:
            ids["mail"].append(new.id)
    # two of them fail: one is retrying, the other dead
    for attempt, want in ((1, "retry"), (1, "bury")):
        [claimed] = store.claim(now=T0 + 10, owner=OWNER, lease_seconds=30, want=1).claimed
        if want == "retry":
            store.retry(claimed.id, attempt, failure(), worker=OWNER, now=T0 + 10,
                        run_at=T0 + 3600, reason="x")
        else:
            store.bury(claimed.id, attempt, failure(), worker=OWNER, now=T0 + 10, reason="x")
            dead = claimed.id
    ids["waiting"] = [i for i in ids["all"] if i != dead]
    # When each filter is paged through, newest first and oldest first,
    # Then every job it matches is shown once, in the order it was written
    for filters, expected in ((JobFilter(), ids["all"]),
                              (JobFilter(state="waiting"), ids["waiting"]),
                              (JobFilter(queue="mail"), ids["mail"])):
        assert _walk(store, filters, oldest_first=True) == expected, filters
        assert _walk(store, filters, oldest_first=False) == expected[::-1], filters


def test_a_job_run_again_in_another_queue_is_listed_under_its_new_queue_and_task(store):
    # Given a finished job, listed under its queue and task
    first = job(T0, queue="mail", task="tests.jobs.send")
    store.enqueue([first], now=T0)
    [claimed] = store.claim(now=T0, owner=OWNER, lease_seconds=30, want=1).claimed
    store.complete([Ack(first.id, claimed.attempt, T0, T0 + 1)])
    assert [j.id for j in store.list_jobs(JobFilter(queue="mail"))] == [first.id]
    # When it is enqueued again, as another task in another queue
    again = dataclasses.replace(first, queue="bulk", task="tests.jobs.resend", fresh=False)
    assert store.rearm(again, now=T0 + 2)
    # Then the listings by queue and by task follow it
    for filters, expected in ((JobFilter(queue="bulk"), [first.id]),
                              (JobFilter(task="tests.jobs.resend"), [first.id]),
                              (JobFilter(queue="mail"), []),
                              (JobFilter(task="tests.jobs.send"), [])):
        assert [j.id for j in store.list_jobs(filters)] == expected, filters
        assert [j.id for j in store.keyset_page(filters).jobs] == expected, filters
        assert store.count_jobs_capped(filters) == (len(expected), False), filters


def test_pruned_jobs_leave_the_listings_of_their_queue_and_task(store):
    old, kept = job(T0, queue="mail", task="tests.jobs.send"), job(T0, queue="mail",
                                                                   task="tests.jobs.send")
    store.enqueue([old, kept], now=T0)
    assert {j.id for j in store.list_jobs(JobFilter(task="tests.jobs.send"))} == {
        kept.id, old.id}
    for claimed in store.claim(now=T0, owner=OWNER, lease_seconds=30, want=2).claimed:
        store.complete([Ack(claimed.id, claimed.attempt, T0,
                            T0 + 1 if claimed.id == old.id else T0 + 86400 * 30)])
    store.prune_retention(RetentionSection(completed_days=7, vacuum=False),
                          now=T0 + 86400 * 20)
    for filters in (JobFilter(queue="mail"), JobFilter(task="tests.jobs.send")):
        assert [j.id for j in store.list_jobs(filters)] == [kept.id], filters
        assert store.count_jobs_capped(filters) == (1, False), filters


def test_jobs_created_in_one_instant_list_in_the_same_order_everywhere(store):
    # Given jobs created at one explicit instant, one at a time and in a batch, with ids
    # that do not follow their insertion, and one job created a second later
    store.enqueue([job(job_id="instant-b")], now=T0)
    store.enqueue([job(job_id="instant-a")], now=T0)
    store.enqueue([job(job_id="instant-d"), job(job_id="instant-c")], now=T0)
    store.enqueue([job(job_id="later")], now=T0 + 1)
    # When they are listed, newest first
    listed = [j.id for j in store.list_jobs(JobFilter())]
    # Then the instant's jobs follow the later one, the last inserted first (not by id),
    # as the dashboard's pages list them
    assert listed == ["later", "instant-c", "instant-d", "instant-a", "instant-b"]
    assert [j.id for j in store.keyset_page(JobFilter()).jobs] == listed
    # and a page from an offset cuts the same list
    assert [j.id for j in store.list_jobs(JobFilter(), limit=2, offset=2)] == listed[2:4]


def test_pages_by_run_time_and_attempts_rank_alike_on_every_backend(store):
    # Given finished jobs of several run times, one retried twice, one running since
    # T0 (ranked by its run time so far) and one waiting (no run time: last)
    quick, slow, slowest, retried, running = (job(T0 - 10, queue=q) for q in "aabab")
    waiting = job(T0 + 100, queue="a")
    store.enqueue([quick, slow, slowest, retried, running, waiting], now=T0 - 10)
    claimed = {c.id: c for c in store.claim(now=T0, owner=OWNER, lease_seconds=300,
                                            want=5).claimed}
    store.retry(retried.id, 1, failure(), worker=OWNER, now=T0, run_at=T0, reason="x")
    assert store.claim(now=T0, owner=OWNER, lease_seconds=300, want=1).claimed[0].id == (
        retried.id)
    store.complete([Ack(quick.id, 1, T0, T0 + 1), Ack(slow.id, 1, T0, T0 + 5),
                    Ack(slowest.id, 1, T0, T0 + 9), Ack(retried.id, 2, T0, T0 + 2)])
    assert set(claimed) >= {quick.id, running.id}

    def ranked(sort: str, filters: JobFilter = JobFilter()) -> list[str]:
        first = store.keyset_page(filters, limit=3, sort=sort, now=T0 + 7)
        rest = store.keyset_page(filters, limit=3, sort=sort, after=first.next_key,
                                 now=T0 + 7) if first.next_key else None
        return [j.id for j in [*first.jobs, *(rest.jobs if rest else [])]]

    # Then run time ranks longest first (running: 7 s so far), ties newest first
    assert ranked("duration") == [slowest.id, running.id, slow.id, retried.id, quick.id,
                                  waiting.id]
    assert ranked("duration", JobFilter(queue="a")) == [slow.id, retried.id, quick.id,
                                                        waiting.id]
    assert ranked("duration", JobFilter(state="completed")) == [slowest.id, slow.id,
                                                                retried.id, quick.id]
    assert ranked("attempts")[0] == retried.id


def test_jobs_created_in_one_instant_list_newest_first_in_the_cli_and_the_dashboard(store):
    # Given three jobs enqueued one after the other at one explicit instant, their
    # ids in neither the order of insertion nor its reverse
    for ident in ("job-tie-b", "job-tie-c", "job-tie-a"):
        store.enqueue([job(T0, job_id=ident)], now=T0)
    newest_first = ["job-tie-a", "job-tie-c", "job-tie-b"]

    # When the CLI's listing and the dashboard's pages read them, with and without a
    # state, Then both list the last inserted first
    for filters in (None, JobFilter(state="available"), JobFilter(state="waiting"),
                    JobFilter(task="tests.jobs.add")):
        assert [j.id for j in store.list_jobs(filters)] == newest_first, filters
        assert [j.id for j in store.keyset_page(filters).jobs] == newest_first, filters
        assert [j.id for j in store.job_page(filters)] == newest_first, filters
        first, rest = store.keyset_page(filters, limit=1), store.list_jobs(filters, offset=1)
        assert [j.id for j in first.jobs + store.keyset_page(
            filters, after=first.next_key).jobs] == newest_first, filters
        assert [j.id for j in rest] == newest_first[1:], filters


def test_attempts_a_task_asked_for_are_told_apart_from_those_its_limit_counted(store):
    # Given a job allowed one attempt whose task asked twice for another (runner.Retry,
    # which does not use up the limit), and whose third attempt failed
    asked, plain = job(max_attempts=1), job(max_attempts=1)
    store.enqueue([asked, plain], now=T0)
    for attempt in (1, 2):
        at = T0 + 10 * attempt
        store.claim(now=at, owner=OWNER, lease_seconds=30, want=2)
        store.retry(asked.id, attempt, failure("retry requested", kind="retry"), worker=OWNER,
                    now=at + 1, run_at=at + 1, reason="retry")
    store.claim(now=T0 + 30, owner=OWNER, lease_seconds=30, want=1)
    store.bury(asked.id, 3, failure(), worker=OWNER, now=T0 + 31, reason="x")
    store.bury(plain.id, 1, failure(), worker=OWNER, now=T0 + 31, reason="x")

    # Then every read the CLI and the dashboard show attempts from says so
    rows = {"get_job": store.get_job(asked.id),
            "list_jobs": next(j for j in store.list_jobs() if j.id == asked.id)}
    for sort in ("newest", "attempts"):
        rows[sort] = next(j for j in store.keyset_page(sort=sort).jobs if j.id == asked.id)
    for read, row in rows.items():
        assert (row.attempt, row.max_attempts, row.requested) == (3, 1, 2), read
        assert attempt_text(row.attempt, row.max_attempts, row.crashes,
                            requested=row.requested) == "3 (1 of 1 allowed +2 requested)", read
    assert store.get_job(plain.id).requested == 0


def test_a_job_run_again_by_hand_after_asked_for_attempts_is_allowed_one_more(store):
    # Given jobs allowed one attempt whose task asked once for another (Retry), then failed
    by_id, in_bulk, again = (job(max_attempts=1, job_id=f"asked-{n}") for n in range(3))
    store.enqueue([by_id, in_bulk, again], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=30, want=3)
    for new in (by_id, in_bulk, again):
        store.retry(new.id, 1, failure("retry requested", kind="retry"), worker=OWNER,
                    now=T0 + 1, run_at=T0 + 1, reason="retry")
    store.claim(now=T0 + 1, owner=OWNER, lease_seconds=30, want=3)
    for new in (by_id, in_bulk, again):
        store.bury(new.id, 2, failure(), worker=OWNER, now=T0 + 2, reason="x")
        assert store.get_job(new.id).attempt_text() == "2 (1 of 1 allowed +1 requested)"

    # When they are retried by hand (one by id, one in bulk) and enqueued again (a
    # pipeline's step), each for one more attempt, which runs
    assert store.retry_jobs([by_id.id], now=T0 + 3) == 1
    chosen = JobFilter(text=in_bulk.id)
    _, top = store.count_for_bulk(chosen, ("dead",))
    assert store.run_bulk("retry", chosen, ("dead",), up_to_rowid=top, now=T0 + 3) == 1
    assert store.rearm(dataclasses.replace(again, run_at=T0 + 3), now=T0 + 3)
    store.claim(now=T0 + 3, owner=OWNER, lease_seconds=30, want=3)

    # Then that attempt is the last the limit allows, and the asked-for one stays apart
    for new in (by_id, in_bulk, again):
        assert store.get_job(new.id).attempt_text() == "3 (2 of 2 allowed +1 requested)"


def test_a_job_retried_by_hand_before_its_budget_is_spent_keeps_it(store):
    # Given a job allowed 3 attempts waiting for its second (retrying), and one allowed 3
    # that was cancelled before it ever ran
    retrying, in_bulk, cancelled = (job(max_attempts=3, job_id=f"kept-{n}") for n in range(3))
    store.enqueue([retrying, in_bulk, cancelled], now=T0)
    store.cancel_jobs([cancelled.id], now=T0)
    store.claim(now=T0, owner=OWNER, lease_seconds=30, want=2)
    for new in (retrying, in_bulk):
        store.retry(new.id, 1, failure(), worker=OWNER, now=T0 + 1, run_at=T0 + 900,
                    reason="retrying")

    # When they are run again by hand (by id, and in bulk), and claimed
    assert store.retry_jobs([retrying.id, cancelled.id], now=T0 + 2) == 2
    chosen = JobFilter(text=in_bulk.id)
    _, top = store.count_for_bulk(chosen, ("retrying",))
    assert store.run_bulk("retry", chosen, ("retrying",), up_to_rowid=top, now=T0 + 2) == 1
    store.claim(now=T0 + 2, owner=OWNER, lease_seconds=30, want=3)

    # Then the retries they had left are still theirs, as the task's policy still
    # retries them: running them now is not giving up their budget
    assert store.get_job(retrying.id).attempt_text() == "2 of 3"
    assert store.get_job(in_bulk.id).attempt_text() == "2 of 3"
    assert store.get_job(cancelled.id).attempt_text() == "1 of 3"
