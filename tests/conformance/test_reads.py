"""The reads of the CLI and the dashboard: filters, searches and pages mean the same on
every backend."""

from __future__ import annotations

import dataclasses

from runner.store.rows import JobFilter
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
