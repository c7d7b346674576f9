"""``python -m runner migrate-to redis://...``: what a user saw on the SQLite file is what
they see on Redis afterwards, and a second copy writes nothing twice."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest

from runner import emit
from runner.cli import main
from runner.errors import EX_CANTCREAT, EX_TEMPFAIL
from runner.flow import FlowLimits
from runner.service_sections import RetentionSection
from runner.store.factory import PROBE_WAIT
from runner.store.job_rows import Ack, QueueBound
from runner.store.redis import RedisStore
from runner.store.rows import JobFilter
from runner.store.schedule_rows import FirePlan, SyncItem
from runner.store.states import JobState
from tests.conformance.helpers import failure, job
from tests.redis_support import (
    REDIS_URL,
    failure_group_members,
    free_port,
    new_prefix,
    redis_or_skip,
)

DAY = 86400.0


@pytest.fixture
def target():
    redis_or_skip()
    prefix = new_prefix()
    store = RedisStore(REDIS_URL, prefix=prefix)
    yield f"{REDIS_URL}?prefix={prefix}", store
    store.delete_all()
    store.close()


def _migrate(settings_file, url: str, *more: str) -> int:  # noqa: ANN001 - a Path
    return main(["--settings", str(settings_file), "migrate-to", url, *more])


def _fill(store, now: float) -> dict[str, str]:  # noqa: ANN001 - the file's store
    """A file with a job in every state, failures, a unique key, results, a fired
    schedule, an event, logs, pauses and a full queue's refusal; the ids by role."""
    old = job(now - 30 * DAY)
    store.enqueue([old], now=now - 30 * DAY)
    store.claim(now=now - 30 * DAY, owner="w:1:1", lease_seconds=30, want=1)
    store.complete([Ack(old.id, 1, now - 30 * DAY, now - 30 * DAY)])

    done, running = job(now - 10), job(now - 10)
    store.enqueue([done, running], now=now - 10)
    store.claim(now=now - 10, owner="w:1:1", lease_seconds=30, want=2)
    store.complete([Ack(done.id, 1, now - 10, now - 9, results=((done.id, b"42"),))])

    flaky, doomed = job(now - 8, max_attempts=3), job(now - 8, max_attempts=2)
    store.enqueue([flaky], now=now - 8)
    store.claim(now=now - 8, owner="w:1:1", lease_seconds=30, want=1)
    # an attempt the task asked for (Retry): shown apart from the limit's, as on the file
    store.retry(flaky.id, 1, failure("first", kind="retry"), worker="w:1:1", now=now - 7,
                run_at=now + 900, reason="retrying")
    store.enqueue([doomed], now=now - 8)
    store.claim(now=now - 7, owner="w:1:1", lease_seconds=30, want=1)
    store.retry(doomed.id, 1, failure("once"), worker="w:1:1", now=now - 6, run_at=now - 6,
                reason="retrying")
    store.claim(now=now - 6, owner="w:1:1", lease_seconds=30, want=1)
    store.bury(doomed.id, 2, failure("twice ✓ 😀"), worker="w:1:1", now=now - 5,
               reason="dead")

    gone = job(now + 7200)
    store.enqueue([gone], now=now)
    store.cancel_jobs([gone.id], now=now)

    waiting, later = job(now - 1, priority=5), job(now + 3600)
    unique = job(now + 3600, task="tests.jobs.unique_report", unique_key="report:1")
    store.enqueue([waiting, later, unique], now=now)

    store.sync_schedules([SyncItem("nightly", "tests.jobs.add", "0 3 * * *", "UTC", "once",
                                   "allow", True, now - 60)], now=now - 120)
    fired = job(now - 60, schedule="nightly")
    store.fire([FirePlan("nightly", now - 60, now + 600, [now - 60], [fired], "allow")],
               clock=lambda: now - 59, queue_size=0)

    store.set_pause("queue", "reports", True, now=now, by="alice")
    store.enqueue([job(now, queue="reports")], now=now)
    store.set_pause("task", "tests.jobs.add", False, now=now, by="bob")

    strict = {"strict": QueueBound(1, "reject")}
    store.enqueue([job(now, queue="strict")], now=now, bounds=strict)
    with pytest.raises(Exception, match="full"):
        store.enqueue([job(now, queue="strict")], now=now, bounds=strict)

    store.write_logs([(now - 9.5, logging.INFO, "tests.jobs", "adding ✓ 😀", done.id,
                       "tests.jobs.add", "w:1:1"),
                      (now - 5, logging.WARNING, "runner.worker", "a worker line", None, None,
                       "w:1:1")])
    return {"old": old.id, "done": done.id, "running": running.id, "flaky": flaky.id,
            "doomed": doomed.id, "gone": gone.id, "waiting": waiting.id, "later": later.id,
            "unique": unique.id, "fired": fired.id}


def _seen(store, now: float) -> dict:  # noqa: ANN001 - a store
    """What the CLI and the dashboard read, minus what is the target's own."""
    jobs = store.list_jobs(JobFilter(), limit=1000)

    def bare(row: object) -> dict:
        # a log record's id is the target's own
        return {k: v for k, v in dataclasses.asdict(row).items() if k != "id"}

    snapshot = store.read_snapshot(now=now)
    return {
        "jobs": sorted((dataclasses.asdict(r) for r in jobs), key=lambda r: r["id"]),
        "errors": {r.id: store.job_errors(r.id) for r in jobs},
        "results": {r.id: store.stored_result(r.id) for r in jobs},
        "counts": store.counts_by_state(),
        "schedules": store.list_schedules(),
        "runs": store.schedule_runs("nightly"),
        "events": store.list_events(),
        "pauses": store.list_pauses(),
        "logs": [bare(r) for r in store.read_logs(limit=100)],
        "totals": snapshot.totals,
        "throughput": store.throughput(now + 60),
        "failures": store.failure_rows(),
        "outcomes": store.handler_outcomes([e.id for e in store.list_events()]),
        "backpressure": snapshot.backpressure,
    }


def _with_a_crash(totals: list) -> list:
    """The counters of ``_fill``'s file once its job left running was charged a crash (a
    failed attempt, and the job requeued)."""
    return [dataclasses.replace(t, failed=t.failed + 1, retried=t.retried + 1)
            if (t.task, t.queue) == ("tests.jobs.add", "default") else t for t in totals]


def test_what_the_file_shows_is_what_redis_shows_after_the_copy(huey, settings_file, target):
    # Given a file with jobs in every state and everything that goes with them
    url, redis = target
    now = time.time()
    file = huey.jobs.store
    ids = _fill(file, now)
    event = emit("user.signup", {"user_id": 42})
    before = _seen(file, now)
    assert event in {e.id for e in before["events"]}

    # When it is copied to Redis
    assert _migrate(settings_file, url) == 0

    # Then Redis shows the same, but for the job left running (its worker is gone: it
    # waits again, charged a crash, as the file's recovery would leave it) and the job
    # that finished a month ago (past the history window)
    after = _seen(redis, now)
    running = next(r for r in after["jobs"] if r["id"] == ids["running"])
    assert (running["state"], running["lease_owner"], running["crashes"]) == (
        JobState.AVAILABLE, None, 1)
    assert [(e.attempt, e.kind, e.error_type) for e in after["errors"][ids["running"]]] == [
        (1, "crash", "WorkerDied")]
    before["totals"] = _with_a_crash(before["totals"])
    (done, failed), (done_after, failed_after) = before["throughput"], after["throughput"]
    assert done_after == done and sum(failed_after) == sum(failed) + 1  # the crash
    del before["throughput"], after["throughput"]
    for view in (before, after):
        view["jobs"] = [r for r in view["jobs"] if r["id"] not in (ids["running"], ids["old"])]
        for name in ("errors", "results"):
            view[name] = {k: v for k, v in view[name].items()
                          if k not in (ids["running"], ids["old"])}
    counts = before["counts"]
    counts.update(executing=counts["executing"] - 1, available=counts["available"] + 1,
                  completed=counts["completed"] - 1)
    before["counts"] = {s: n for s, n in counts.items() if n}
    after["counts"] = {s: n for s, n in after["counts"].items() if n}
    for name in before:
        assert after[name] == before[name], name
    assert after["errors"][ids["doomed"]][-1].traceback == "Traceback ...\nValueError: twice ✓ 😀"
    assert redis.get_job(ids["flaky"]).requested == 1


def test_copied_failed_jobs_are_in_their_failure_groups(huey, settings_file, target):
    # Given a file with a dead and a retrying job, copied to Redis
    url, redis = target
    now = time.time()
    ids = _fill(huey.jobs.store, now)
    assert _migrate(settings_file, url) == 0
    # When the groups are said complete (no lookup indexes what the copy left out)
    redis.r.set(redis.k("fgindexed"), 1)
    # Then each failed job is in the group of its error, as the copy wrote it
    assert failure_group_members(redis, "ValueError", "twice ✓ 😀") == [ids["doomed"]]
    assert failure_group_members(redis, "ValueError", "first") == [ids["flaky"]]
    assert sorted(redis.failure_messages("ValueError")) == ["first", "twice ✓ 😀"]


def test_a_second_copy_writes_nothing_twice(huey, settings_file, target, capsys):
    url, redis = target
    now = time.time()
    _fill(huey.jobs.store, now)
    assert _migrate(settings_file, url) == 0
    first = _seen(redis, now)
    capsys.readouterr()

    assert _migrate(settings_file, url) == 0
    out = capsys.readouterr().out
    assert " 0 new" in out and "jobs: 11 read, 0 new, 11 already there" in out
    assert _seen(redis, now) == first


def test_a_copied_job_that_redis_ran_and_forgot_is_not_copied_again(huey, settings_file,
                                                                     target):
    # Given a job copied over, then run and pruned on Redis
    url, redis = target
    now = time.time()
    copied = job(now)
    huey.jobs.store.enqueue([copied], now=now)
    assert _migrate(settings_file, url) == 0
    [claimed] = redis.claim(now=now, owner="r:1:1", lease_seconds=30, want=1).claimed
    redis.complete([Ack(claimed.id, 1, now - 2 * DAY, now - 2 * DAY)])
    redis.prune_retention(RetentionSection(completed_days=1, vacuum=False), now=now)
    assert redis.count_jobs() == 0
    # When the file is copied again, Then the job does not come back to run twice
    assert _migrate(settings_file, url) == 0
    assert redis.count_jobs() == 0


def test_unique_keys_and_pauses_still_hold_on_redis(huey, settings_file, target):
    url, redis = target
    now = time.time()
    file = huey.jobs.store
    holder = job(now, unique_key="report:1")
    file.enqueue([holder, job(now, queue="reports")], now=now)
    file.set_pause("queue", "reports", True, now=now, by="alice")
    assert _migrate(settings_file, url) == 0
    again = job(now, unique_key="report:1")
    assert redis.enqueue([again], now=now).duplicates == {again.id: holder.id}
    claimed = redis.claim(now=now, owner="r:1:1", lease_seconds=30, want=10).claimed
    assert [c.id for c in claimed] == [holder.id]


def test_jobs_held_back_by_a_concurrency_limit_still_wait_their_turn(huey, settings_file,
                                                                     target):
    # Given a key's backlog on the file: the first running, the rest parked
    url, redis = target
    now = time.time()
    file = huey.jobs.store
    limits = FlowLimits(key_concurrency={"sync": 1})
    backlog = [job(now - 10 + n, task="sync", concurrency_key="big") for n in range(4)]
    other = job(now - 1, task="other")
    file.enqueue([*backlog, other], now=now - 10)
    for _ in range(3):
        file.claim(now=now, owner="w:1:1", lease_seconds=30, want=5, limits=limits)
    assert file.count_jobs(JobFilter(state="executing")) == 2
    file.complete([Ack(other.id, 1, now, now)])
    # When copied, Then Redis runs them one at a time, in order
    assert _migrate(settings_file, url) == 0
    order = []
    for _ in range(4):
        [claimed] = redis.claim(now=now, owner="r:1:1", lease_seconds=30, want=5,
                                limits=limits, queues=("default",)).claimed or [None]
        if claimed is None:
            break
        order.append(claimed.id)
        redis.complete([Ack(claimed.id, claimed.attempt, now, now)])
    assert order == [j.id for j in backlog]


def test_a_file_with_running_workers_is_refused_in_one_line(huey, settings_file, target,
                                                            capsys):
    url, redis = target
    huey.jobs.store.enqueue([job(time.time())], now=time.time())
    huey.jobs.store.register("elsewhere:1:1", concurrency=1, queues=())
    assert _migrate(settings_file, url) == EX_TEMPFAIL
    err = capsys.readouterr().err
    assert "still run on this file" in err and len(err.strip().splitlines()) == 1
    assert redis.count_jobs() == 0
    assert _migrate(settings_file, url, "--force") == 0
    assert redis.count_jobs() == 1


def test_a_redis_holding_jobs_of_its_own_is_refused_in_one_line(huey, settings_file, target,
                                                                capsys):
    url, redis = target
    now = time.time()
    huey.jobs.store.enqueue([job(now)], now=now)
    redis.enqueue([job(now)], now=now)
    assert _migrate(settings_file, url) == EX_CANTCREAT
    err = capsys.readouterr().err
    assert "holds jobs" in err and len(err.strip().splitlines()) == 1
    assert redis.count_jobs() == 1


def test_a_url_of_neither_backend_is_refused(huey, settings_file, capsys):
    assert _migrate(settings_file, "mysql://x/y") == 78
    assert "is not a PostgreSQL or Redis URL" in capsys.readouterr().err


def test_what_the_file_did_since_the_last_copy_arrives_with_the_next(huey, settings_file,
                                                                     target):
    # Given a file copied once, then a job, a log record and a completion more on it
    url, redis = target
    now = time.time()
    file = huey.jobs.store
    _fill(file, now)
    assert _migrate(settings_file, url) == 0
    late = job(now, priority=10)
    file.enqueue([late], now=now)
    [claimed] = file.claim(now=now, owner="w:1:1", lease_seconds=30, want=1,
                           queues=("default",)).claimed
    file.complete([Ack(late.id, claimed.attempt, now, now + 0.5)])
    file.write_logs([(now + 1, logging.INFO, "tests.jobs", "later", None, None, "w:1:1")])
    # When it is copied again, Then Redis shows those too, and counts them once
    assert _migrate(settings_file, url) == 0
    seen_file, seen_redis = _seen(file, now), _seen(redis, now)
    assert seen_redis["logs"] == seen_file["logs"] and len(seen_redis["logs"]) == 3
    assert seen_redis["totals"] == _with_a_crash(seen_file["totals"])
    assert redis.get_job(late.id).state == JobState.COMPLETED


def test_a_redis_that_does_not_answer_is_named_in_one_line(huey, settings_file, capsys):
    port = free_port()
    huey.jobs.store.enqueue([job(time.time())], now=time.time())
    assert _migrate(settings_file, f"redis://127.0.0.1:{port}/0?prefix=gone") == EX_CANTCREAT
    err = capsys.readouterr().err
    # A person waits on the copy: told within the probe's wait, not after the reconnects
    assert err.startswith(f"error: redis://127.0.0.1:{port}/0 (prefix gone): cannot connect "
                          f"to Redis within {PROBE_WAIT:g}s"), err
    assert len(err.strip().splitlines()) == 1, err
