"""The flow-control claim reads through indexes (no statement scans the jobs table), and
limits that cannot bind in a claim change nothing of what it takes."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter

import pytest

from runner.config import DatabaseSection
from runner.flow import FlowLimits, Rate, weighted_pick
from runner.store.job_rows import NewJob
from runner.store.sqlite import SqliteStore, shares
from runner.store.sqlite.db import Database
from runner.store.sqlite.schema import prepare_database
from runner.store.sqlite.shares import take_shares
from runner.store.sqlite.transitions import claim

T0 = 1_700_000_000.0

LIMITS = [
    FlowLimits(aging=60, weights={"q0": 4, "q1": 3, "q2": 2, "q3": 1},
               queue_concurrency={"q1": 2}, queue_rates={"q2": Rate(5, 1)},
               task_concurrency={"t1": 1}, key_concurrency={"t2": 1},
               task_rates={"t3": Rate(1, 60)}),
    FlowLimits(aging=60, queue_concurrency={"q1": 2}, task_concurrency={"t1": 1}),
    # Limits far above what a claim takes (the claim then checks no job one by one).
    FlowLimits(weights={"q0": 4, "q1": 3, "q2": 2, "q3": 1}, queue_concurrency={"q1": 500},
               queue_rates={"q2": Rate(100000, 1, 1000)}),
    FlowLimits(queue_concurrency={"q1": 500}, queue_rates={"q2": Rate(100000, 1, 1000)}),
]


def _plans(tmp_path, limits: FlowLimits) -> list[tuple[str, list[str]]]:
    db = Database(tmp_path / f"jobs-{id(limits)}.db", DatabaseSection())
    prepare_database(db)
    store = SqliteStore(db)
    store.enqueue([NewJob(f"j{n:05d}", f"t{n % 4}", f"q{n % 4}", n % 3, b"x", None, 1,
                          T0 - 5000 + n, concurrency_key=f"u{n % 7}") for n in range(5000)],
                  now=T0)
    statements: list[str] = []

    def traced(conn: sqlite3.Connection):
        conn.set_trace_callback(statements.append)
        try:
            for _ in range(3):
                claim(conn, now=T0, owner="o", lease_seconds=60, want=16, busy=False,
                      limits=limits)
        finally:
            conn.set_trace_callback(None)

    db.write(traced)
    conn = db.connection()
    reads = [s for s in statements if s.lstrip().startswith(("SELECT", "WITH"))
             and "runner_job " in s]
    assert reads, statements
    return [(s, [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {s}")]) for s in reads]


def test_every_read_of_the_flow_claim_goes_through_an_index(tmp_path):
    for limits in LIMITS:
        for statement, plan in _plans(tmp_path, limits):
            # A bare scan reads every row; a sort reads every candidate before the first.
            bad = [step for step in plan if re.fullmatch(r"SCAN runner_job", step)
                   or "TEMP B-TREE FOR ORDER BY" in step]
            assert not bad, (statement, plan)
            assert any(re.search(r"USING (COVERING )?INDEX", step) for step in plan), (
                statement, plan)


def _store(tmp_path, jobs: list[NewJob]) -> SqliteStore:
    db = Database(tmp_path / "jobs.db", DatabaseSection())
    prepare_database(db)
    store = SqliteStore(db)
    store.enqueue(jobs, now=T0)
    return store


def _queues_taken(store: SqliteStore, limits: FlowLimits, want: int) -> list[str]:
    result = store.claim(now=T0, owner="o", lease_seconds=60, want=want, limits=limits)
    return [result.labels[c.id][1] for c in result.claimed]


def test_limits_far_from_binding_share_queues_pick_by_pick_as_weighted_pick(tmp_path):
    weights = {"q0": 4, "q1": 3, "q2": 2, "q3": 1}
    limits = FlowLimits(weights=weights, queue_concurrency={"q1": 500},
                        queue_rates={"q2": Rate(100000, 1, 1000)})
    store = _store(tmp_path, [NewJob(f"j{n:04d}", "t", f"q{n % 4}", 0, b"x", None, 1,
                                     T0 - 1000 + n) for n in range(400)])
    counters: dict[str, float] = {}
    expected = []
    for _ in range(3 * 25):
        queue, counters = weighted_pick(counters, weights, sorted(weights))
        expected.append(queue)
    taken = [q for _ in range(3) for q in _queues_taken(store, limits, 25)]
    assert taken == expected


def test_a_claim_wanting_more_than_a_cap_allows_takes_up_to_the_cap(tmp_path):
    jobs = [NewJob(f"j{n:04d}", f"t{n % 2}", f"q{n % 2}", 0, b"x", None, 1, T0 - 1000 + n)
            for n in range(200)]
    cases = [
        (FlowLimits(queue_concurrency={"q0": 5}), 5),
        (FlowLimits(weights={"q0": 3}, queue_concurrency={"q0": 5}), 5),
        (FlowLimits(queue_rates={"q0": Rate(1, 60, 3)}), 3),
        (FlowLimits(task_concurrency={"t0": 4}, weights={"q1": 2}), 4),
        (FlowLimits(task_rates={"t0": Rate(1, 60, 2)}), 2),
    ]
    for n, (limits, most) in enumerate(cases):
        store = _store(tmp_path / str(n), jobs)
        # Two claims of 20: q1 (unlimited) fills what q0's limit holds back.
        taken = _queues_taken(store, limits, 20) + _queues_taken(store, limits, 20)
        assert (taken.count("q0"), len(taken)) == (most, 40), (limits, taken)


def _claims(store: SqliteStore, limits: FlowLimits, wants: list[int]) -> list[list[str]]:
    return [[c.id for c in store.claim(now=T0, owner="o", lease_seconds=60, want=want,
                                       limits=limits).claimed] for want in wants]


def test_shares_planned_ahead_take_what_the_claim_job_by_job_takes(tmp_path, monkeypatch):
    """Queue shares no limit binds are claimed by a plan of the turns (shares.py): the
    same jobs, in the same order, with the same turns stored, as picked one by one;
    also when queues run short of their share or hold jobs not yet due."""
    jobs = ([NewJob(f"a{n:03d}", "t", "q0", n % 3, b"x", None, 1, T0 - 500 + n,
                    concurrency_key=f"u{n % 5}") for n in range(50)]
            + [NewJob(f"b{n:03d}", "t", "q1", 0, b"x", None, 1, T0 - 400 + n) for n in range(3)]
            + [NewJob(f"c{n:03d}", "t", "q1", 0, b"x", None, 1, T0 + 60) for n in range(5)]
            + [NewJob(f"d{n:03d}", "t", "q2", 1, b"x", None, 1, T0 - 300 + n % 4)
               for n in range(20)])
    weights = {"q0": 4, "q1": 3, "q2": 2, "q3": 1}
    wants = [7, 16, 1, 25, 16, 16]
    keys = {"t": 100}  # a limit per key far from binding: the claim reads the keys
    for aging, queues, per_key in ((0.0, ("q0", "q1", "q2"), {}), (60.0, ("q1", "q2"), {}),
                                   (0.0, ("q0", "q1", "q2"), keys)):
        limits = FlowLimits(aging=aging, weights=weights, queue_concurrency={"q0": 500},
                            key_concurrency=per_key)
        chosen = [j for j in jobs if j.queue in queues]
        planned = _store(tmp_path / f"planned-{aging}-{len(per_key)}", chosen)
        planned_claims: list[int] = []
        with monkeypatch.context() as patch:
            patch.setattr("runner.store.sqlite.limits.take_shares",
                          _counting(take_shares, planned_claims))
            by_plan = _claims(planned, limits, wants)
        assert planned_claims  # the plan took some of the claims
        with monkeypatch.context() as patch:
            patch.setattr("runner.store.sqlite.limits.take_shares", lambda *a, **k: None)
            one_by_one = _store(tmp_path / f"one-{aging}-{len(per_key)}", chosen)
            assert _claims(one_by_one, limits, wants) == by_plan
        turns = "SELECT key, value FROM runner_flow ORDER BY key"
        assert (planned.db.connection().execute(turns).fetchall()
                == one_by_one.db.connection().execute(turns).fetchall())
        assert sum(map(len, by_plan)) == sum(1 for j in chosen if j.run_at <= T0)


def _ahead(store: SqliteStore, limits: FlowLimits, want: int) -> list[str]:
    result = store.claim(now=T0, owner="o", lease_seconds=60, want=want, limits=limits,
                         ahead=True)
    return [result.labels[c.id][1] for c in result.claimed]


def test_a_claim_taken_ahead_takes_its_share_in_runs_of_one_queue(tmp_path):
    """Jobs taken ahead of the threads come from one queue per claim (each queue in its
    turn, by weight), so a claim's writes land in one place of the claim and history
    indexes; the shares hold over consecutive claims."""
    weights = {"q0": 4, "q1": 3, "q2": 2, "q3": 1}
    store = _store(tmp_path, [NewJob(f"j{n:05d}", "t", f"q{n % 4}", 0, b"x", None, 1,
                                     T0 - 5000 + n) for n in range(2000)])
    limits = FlowLimits(weights=weights, queue_concurrency={"q1": 500})
    claims = [_ahead(store, limits, 20) for _ in range(30)]
    assert all(len(set(queues)) == 1 for queues in claims), claims
    taken = Counter(q for queues in claims for q in queues)
    for queue, weight in weights.items():  # 600 jobs: 60 per unit of weight, within a claim
        assert abs(taken[queue] - 60 * weight) <= 20, taken
    # Each queue's jobs in their order: the oldest first.
    rows = store.db.connection().execute(
        "SELECT queue, id FROM runner_job WHERE state = 'executing' ORDER BY rowid").fetchall()
    for queue in weights:
        ids = [job_id for q, job_id in rows if q == queue]
        assert ids == sorted(ids)


def test_a_run_that_finds_its_queue_short_goes_on_with_the_next_queue(tmp_path):
    jobs = ([NewJob(f"a{n:03d}", "t", "q0", 0, b"x", None, 1, T0 - 100 + n) for n in range(5)]
            + [NewJob(f"b{n:03d}", "t", "q1", 0, b"x", None, 1, T0 - 100 + n)
               for n in range(50)])
    store = _store(tmp_path, jobs)
    limits = FlowLimits(weights={"q0": 9, "q1": 1})
    assert _ahead(store, limits, 16) == ["q0"] * 5 + ["q1"] * 11
    assert _ahead(store, limits, 16) == ["q1"] * 16


def test_a_claim_not_taken_ahead_still_interleaves_its_shares(tmp_path):
    store = _store(tmp_path, [NewJob(f"j{n:05d}", "t", f"q{n % 2}", 0, b"x", None, 1,
                                     T0 - 500 + n) for n in range(100)])
    taken = _queues_taken(store, FlowLimits(weights={"q0": 3, "q1": 1}), 8)
    assert taken == ["q0", "q0", "q1", "q0", "q0", "q0", "q1", "q0"]


def _counting(fn, calls: list[int]):
    def counted(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)
    return counted


def test_a_plan_that_gives_a_queue_fewer_picks_than_it_took_loses_no_claimed_job(
        tmp_path, monkeypatch):
    """Never expected (the shares of the other queues can only grow when one runs short),
    but were a later plan to give a queue fewer picks than the jobs it already gave,
    every job claimed comes back to the worker: none is left running unknown to it."""
    jobs = ([NewJob(f"a{n:03d}", "t", "q0", 0, b"x", None, 1, T0 - 100 + n) for n in range(2)]
            + [NewJob(f"b{n:03d}", "t", "q1", 0, b"x", None, 1, T0 - 100 + n)
               for n in range(50)])
    store = _store(tmp_path, jobs)
    real = shares.plan.__wrapped__
    rounds: list[int] = []

    def skewed(names, weights, counters, caps, want, runs=False):
        rounds.append(1)
        picks, after = real(names, weights, counters, caps, want, runs)
        if len(rounds) > 1:  # the re-plan gives q1 2 picks, after it took 4
            ones = [n for n, p in enumerate(picks) if p == 1]
            picks = tuple(p for n, p in enumerate(picks) if p != 1 or n in ones[-2:])
        return picks, after

    monkeypatch.setattr(shares, "plan", skewed)
    result = store.claim(now=T0, owner="o", lease_seconds=60, want=8,
                         limits=FlowLimits(weights={"q0": 1, "q1": 1}))
    running = {row[0] for row in store.db.connection().execute(
        "SELECT id FROM runner_job WHERE state = 'executing'")}
    assert len(rounds) >= 2
    assert {c.id for c in result.claimed} == running
    assert sorted(running) == ["a000", "a001", "b000", "b001", "b002", "b003"]


@pytest.mark.parametrize("aging, levels", [(60.0, 1), (0.0, 3)],
                         ids=["aging-one-priority", "no-aging-three-priorities"])
def test_limits_that_cannot_bind_claim_as_the_plain_claim_does_in_one_statement(
        tmp_path, aging, levels):
    """Without weights, limits far from binding leave the claim to the plain claim's
    statement (when aging cannot reorder the jobs): the same jobs in the same order, no
    job read into Python before it is claimed, and the rate's tokens spent on what was
    taken."""
    def jobs() -> list[NewJob]:
        return [NewJob(f"j{n:05d}", f"t{n % 2}", f"q{n % 3}", n % levels, b"x", None, 1,
                       T0 - 500 + n, concurrency_key=f"u{n % 5}") for n in range(300)]

    limits = FlowLimits(aging=aging, queue_concurrency={"q1": 500},
                        key_concurrency={"t1": 400}, queue_rates={"q2": Rate(100000, 1, 1000)})
    plain = _store(tmp_path / "plain", jobs())
    limited = _store(tmp_path / "limited", jobs())
    statements: list[str] = []
    limited.db.connection().set_trace_callback(statements.append)
    for want in (16, 40, 3):
        without = plain.claim(now=T0, owner="o", lease_seconds=60, want=want)
        under = limited.claim(now=T0, owner="o", lease_seconds=60, want=want, limits=limits)
        assert [c.id for c in under.claimed] == [c.id for c in without.claimed]
    reads = [s for s in statements if s.lstrip().startswith("SELECT rowid")]
    assert reads == [], reads
    [(tokens,)] = limited.db.connection().execute(
        "SELECT value FROM runner_flow WHERE key LIKE '%q2%'").fetchall()
    taken_q2 = limited.db.connection().execute(
        "SELECT count(*) FROM runner_job WHERE queue = 'q2' AND state = 'executing'"
    ).fetchone()[0]
    assert taken_q2 > 0 and tokens == 1000 - taken_q2
