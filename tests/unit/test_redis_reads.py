"""Redis: what the dashboard's and the CLI's reads cost follows what they show, not the
history (a page deep into a million jobs reads its own jobs, as on SQLite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner import control
from runner.store.job_rows import Ack
from runner.store.redis import RedisStore
from runner.store.rows import JobFilter
from tests.conformance.helpers import T0, failure, job
from tests.redis_support import fresh_store

HISTORY = 1500


@pytest.fixture
def store() -> Iterator[RedisStore]:
    with fresh_store() as opened:
        opened.enqueue([job(T0 - 60) for _ in range(HISTORY)], now=T0 - 60)
        yield opened


@pytest.fixture
def hashes_read(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The job hashes the store reads from now on."""
    read: list[str] = []
    pipeline = store.r.pipeline

    def counting(*args: object, **kwargs: object):  # noqa: ANN202 - redis' own Pipeline
        pipe = pipeline(*args, **kwargs)
        hgetall = pipe.hgetall

        def counted(name: str):  # noqa: ANN202
            read.append(name)
            return hgetall(name)
        pipe.hgetall = counted  # type: ignore[method-assign]
        return pipe
    monkeypatch.setattr(store.r, "pipeline", counting)
    return read


@pytest.mark.parametrize("filters", [JobFilter(), JobFilter(state="available"),
                                     JobFilter(state="waiting")], ids=repr)
@pytest.mark.parametrize("oldest_first", [False, True])
def test_a_page_deep_in_the_history_reads_only_its_own_jobs(store, hashes_read, filters,
                                                            oldest_first):
    # Given a listing paged to its 1,000th job
    start = store.keyset_page(filters, limit=1000, oldest_first=oldest_first)
    hashes_read.clear()
    # When the next page is read (as every refresh of it does)
    page = store.keyset_page(filters, limit=100, after=start.next_key,
                             oldest_first=oldest_first)
    # Then it holds the next 100 jobs, read without the 1,000 before them
    assert len(hashes_read) <= 100 + 1, len(hashes_read)
    walked = store.keyset_page(filters, limit=1100, oldest_first=oldest_first).jobs
    assert [j.id for j in page.jobs] == [j.id for j in walked[1000:]]


@pytest.mark.parametrize("filters", [JobFilter(queue="mail"), JobFilter(task="tests.jobs.send"),
                                     JobFilter(queue="mail", state="available")], ids=repr)
def test_a_listing_by_queue_or_task_reads_only_the_jobs_it_shows(store, hashes_read, filters):
    # Given a few jobs of a queue and task written before a long history of others
    few = [job(T0 - 120, queue="mail", task="tests.jobs.send") for _ in range(3)]
    store.enqueue(few, now=T0 - 120)
    store.enqueue([job(T0) for _ in range(HISTORY)], now=T0)
    store.list_jobs(filters)  # the first read brings the listings by queue and task up to date
    hashes_read.clear()
    # When the dashboard shows them (a page and its count) and the CLI lists them
    page = store.keyset_page(filters, limit=100)
    count = store.count_jobs_capped(filters, cap=10_000)
    listed = store.list_jobs(filters)
    # Then only their own jobs are read, whatever the history
    assert {j.id for j in page.jobs} == {j.id for j in listed} == {j.id for j in few}
    assert count == (3, False)
    assert len(hashes_read) <= 3 * 3, len(hashes_read)


def test_a_text_search_reads_only_the_jobs_it_finds(store, hashes_read):
    # Given one job among a long history whose error holds the text looked for
    [found] = store.claim(now=T0, owner="w:1:1", lease_seconds=30, want=1).claimed
    store.bury(found.id, 1, failure("Connection refused by db-7"), worker="w:1:1", now=T0,
               reason="x")
    hashes_read.clear()
    # When the dashboard pages and counts a search for it, in another case
    page = store.keyset_page(JobFilter(text="REFUSED BY DB-7"), limit=100)
    count = store.count_jobs_capped(JobFilter(text="refused by db-7"))
    # Then the history's hashes are not read whole (Redis looks at their text itself)
    assert [j.id for j in page.jobs] == [found.id] and count == (1, False)
    assert len(hashes_read) <= 2, len(hashes_read)


def test_a_bulk_action_over_dead_jobs_reads_only_the_dead_jobs(store, hashes_read):
    # Given three dead jobs after a long history of waiting ones
    claimed = store.claim(now=T0, owner="w:1:1", lease_seconds=30, want=3).claimed
    for c in claimed:
        store.bury(c.id, c.attempt, failure(), worker="w:1:1", now=T0, reason="x")
    hashes_read.clear()
    # When a bulk retry of the dead jobs is counted and run
    plan = control.plan_bulk(store, "retry", JobFilter(state="dead"))
    done = control.run_bulk(store, plan)
    # Then the history's hashes are not read
    assert (plan.count, done) == (3, 3)
    assert len(hashes_read) <= 3 * 2, len(hashes_read)


@pytest.mark.parametrize("sort", ["duration", "attempts"])
@pytest.mark.parametrize("filters", [JobFilter(), JobFilter(state="completed"),
                                     JobFilter(text="tests.jobs")], ids=repr)
def test_a_page_by_run_time_or_attempts_reads_whole_only_the_jobs_it_shows(
        store, hashes_read, sort, filters):
    # Given a history of finished jobs of every run time (a window to rank)
    claimed = store.claim(now=T0, owner="w:1:1", lease_seconds=30, want=HISTORY).claimed
    store.complete([Ack(c.id, 1, T0, T0 + (n % 37) * 0.5) for n, c in enumerate(claimed)])
    hashes_read.clear()
    # When the dashboard shows the first page and the next by run time or attempts
    first = store.keyset_page(filters, limit=50, sort=sort, now=T0 + 60)
    second = store.keyset_page(filters, limit=50, sort=sort, after=first.next_key,
                               now=T0 + 60)
    # Then only the jobs shown are read whole; the window is ranked on a few fields
    assert len(hashes_read) <= 2 * 50, len(hashes_read)
    shown = [*first.jobs, *second.jobs]
    assert len({j.id for j in shown}) == 100
    if sort == "duration":
        assert [j.duration for j in shown] == sorted((j.duration for j in shown),
                                                     reverse=True)
        assert shown[0].duration == 18.0
