"""The claim under flow control: priority aging, queue shares, concurrency and rate limits.

Runs inside the claim's write transaction (:func:`runner.store.transitions.claim`),
so every worker of every process reads and updates the same counts and buckets:

* concurrency: the ``executing`` rows per queue, per task and per (task, key)
  are counted (a few hundred rows at most, through the lease index);
* rates: token buckets in ``runner_flow``, refilled and spent here;
* shares: each queue's smooth round-robin counter in ``runner_flow``;
* order: per queue, each level of priority is read oldest due first through
  ``runner_job_queue_claim`` (one index seek per level), and the levels are
  merged by effective priority (:func:`runner.flow.claim_order`).

A job over a limit is not touched: it stays waiting, with no attempt spent,
and the claim reports when the next token of a blocking bucket is due so the
worker sleeps until then.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from runner.flow import (
    FlowLimits,
    Rate,
    bucket_key,
    claim_order,
    has_token,
    next_token_at,
    refill,
    turn_key,
    weighted_pick,
)
from runner.store.states import EXECUTING_SQL, WAITING_SQL

#: Levels of priority read per queue and claim; jobs of lower levels wait for a later claim.
MAX_LEVELS = 32


@dataclass
class _Candidate:
    id: str
    task: str
    key: str | None
    queue: str
    order: tuple[int, float]


@dataclass
class _Budget:
    """What the limits still allow in this claim."""

    limits: FlowLimits
    running_queue: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    running_task: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    running_key: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    tokens: dict[str, float] = field(default_factory=dict)
    spent: set[str] = field(default_factory=set)

    def queue_open(self, queue: str) -> bool:
        cap = self.limits.queue_concurrency.get(queue, 0)
        if cap and self.running_queue[queue] >= cap:
            return False
        rate = self.limits.queue_rates.get(queue)
        return rate is None or has_token(self.tokens.get(bucket_key("queue", queue), 1.0), rate)

    def task_open(self, task: str) -> bool:
        cap = self.limits.task_concurrency.get(task, 0)
        if cap and self.running_task[task] >= cap:
            return False
        rate = self.limits.task_rates.get(task)
        return rate is None or has_token(self.tokens.get(bucket_key("task", task), 1.0), rate)

    def key_open(self, task: str, key: str | None) -> bool:
        cap = self.limits.key_concurrency.get(task, 0)
        return not (cap and key is not None and self.running_key[(task, key)] >= cap)

    def allows(self, c: _Candidate) -> bool:
        return self.queue_open(c.queue) and self.task_open(c.task) and self.key_open(c.task,
                                                                                     c.key)

    def full(self) -> frozenset[str]:
        """The concurrency limits at their cap (a job finishing frees a slot others want)."""
        found = {full_label("queue", q) for q, cap in self.limits.queue_concurrency.items()
                 if self.running_queue[q] >= cap}
        found.update(full_label("task", t) for t, cap in self.limits.task_concurrency.items()
                     if self.running_task[t] >= cap)
        found.update(full_label("task", t) for (t, _), n in self.running_key.items()
                     if n >= self.limits.key_concurrency.get(t, 0) > 0)
        return frozenset(found)

    def take(self, c: _Candidate) -> None:
        self.running_queue[c.queue] += 1
        self.running_task[c.task] += 1
        if c.key is not None:
            self.running_key[(c.task, c.key)] += 1
        for name in (bucket_key("queue", c.queue), bucket_key("task", c.task)):
            if name in self.tokens:
                self.tokens[name] -= 1
                self.spent.add(name)


@dataclass(frozen=True)
class Choice:
    """What the limits let a claim take."""

    ids: list[str]
    """Jobs to claim now, best first."""
    next_due: float | None
    """With nothing to claim: a later ``run_at``, or the next token of a bucket."""
    full: frozenset[str]
    """Concurrency limits at their cap once these start (:func:`full_label` names)."""


def full_label(kind: str, name: str) -> str:
    """How :attr:`Choice.full` names a queue's or a task's concurrency limit."""
    return f"{kind}:{name}"


def choose_limited(conn: sqlite3.Connection, *, now: float, want: int, queues: Sequence[str],
                   limits: FlowLimits, crashes: str) -> Choice:
    """Up to ``want`` job ids the limits let start now, best first.

    The caller claims the ids in the same transaction: the buckets and queue
    counters are written here as spent on them.

    ``crashes`` is the SQL condition on ``crashes`` ("= 0", or "> 0" for a suspect).
    The next due time is the earliest of a later ``run_at`` and the next token of a
    bucket that holds jobs back; None when only concurrency holds them (a finishing
    job frees the slot, and its worker's next claim or the poll interval finds it).
    """
    waiting = _waiting_queues(conn, queues)
    budget = _budget(conn, now, limits, waiting)
    streams: dict[str, list[_Candidate]] = {}
    for queue in waiting:
        if budget.queue_open(queue):
            streams[queue] = _candidates(conn, queue, now, want, limits, budget, crashes)
    chosen = _choose(conn, streams, budget, want, now, limits)
    full = budget.full()
    if chosen:
        conn.executemany(
            "INSERT INTO runner_flow (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            [(name, budget.tokens[name], now) for name in sorted(budget.spent)])
        return Choice([c.id for c in chosen], None, full)
    return Choice([], _next_due(conn, now, waiting, budget), full)


def _waiting_queues(conn: sqlite3.Connection, queues: Sequence[str]) -> list[str]:
    """Queues with waiting jobs (the per-queue count the triggers keep), this worker's only."""
    found = [q for (q,) in conn.execute(
        "SELECT queue FROM runner_queue WHERE waiting > 0 ORDER BY queue")]
    return [q for q in found if q in queues] if queues else found


def _budget(conn: sqlite3.Connection, now: float, limits: FlowLimits,
            waiting: Sequence[str]) -> _Budget:
    budget = _Budget(limits)
    if limits.queue_concurrency or limits.task_concurrency or limits.key_concurrency:
        for queue, task, key, count in conn.execute(
                f"SELECT queue, task, concurrency_key, count(*) FROM runner_job INDEXED BY "
                f"runner_job_lease WHERE state = {EXECUTING_SQL} GROUP BY queue, task, "
                "concurrency_key"):
            budget.running_queue[queue] += count
            budget.running_task[task] += count
            if key is not None:
                budget.running_key[(task, key)] += count
    rates: dict[str, Rate] = {bucket_key("queue", q): r for q, r in limits.queue_rates.items()
                              if q in waiting}
    rates.update((bucket_key("task", t), r) for t, r in limits.task_rates.items())
    if rates:
        stored = _read_state(conn, list(rates))
        for name, rate in rates.items():
            value, updated = stored.get(name, (None, now))
            budget.tokens[name] = refill(value, updated, now, rate)
    return budget


def _read_state(conn: sqlite3.Connection, names: Sequence[str]
                ) -> dict[str, tuple[float, float]]:
    marks = ",".join("?" * len(names))
    return {key: (value, updated) for key, value, updated in conn.execute(
        f"SELECT key, value, updated_at FROM runner_flow WHERE key IN ({marks})", list(names))}


_LEVELS_SQL = (
    f"WITH RECURSIVE level(p, n) AS ("
    f"SELECT (SELECT max(priority) FROM runner_job INDEXED BY runner_job_queue_claim "
    f"WHERE state IN {WAITING_SQL} AND queue = ?1), 1 "
    f"UNION ALL SELECT (SELECT max(priority) FROM runner_job INDEXED BY runner_job_queue_claim "
    f"WHERE state IN {WAITING_SQL} AND queue = ?1 AND priority < level.p), n + 1 "
    f"FROM level WHERE level.p IS NOT NULL AND n < {MAX_LEVELS}) "
    f"SELECT p FROM level WHERE p IS NOT NULL")


def _candidates(conn: sqlite3.Connection, queue: str, now: float, want: int,
                limits: FlowLimits, budget: _Budget, crashes: str) -> list[_Candidate]:
    """Up to ``want`` due jobs of each priority level of a queue, best first.

    Tasks and keys already at their limit are left out in SQL, so a backlog of
    held-back jobs does not crowd out the jobs behind it.
    """
    held_tasks = sorted({t for t in [*limits.task_concurrency, *limits.task_rates]
                         if not budget.task_open(t)})
    held_keys = sorted({pair for pair, n in budget.running_key.items()
                        if n >= limits.key_concurrency.get(pair[0], 0) > 0})
    extra, params = "", []
    if held_tasks:
        extra += f" AND task NOT IN ({','.join('?' * len(held_tasks))})"
        params += held_tasks
    if held_keys:
        extra += (f" AND (concurrency_key IS NULL OR (task, concurrency_key) NOT IN "
                  f"(VALUES {','.join(['(?,?)'] * len(held_keys))}))")
        params += [part for pair in held_keys for part in pair]
    found: list[_Candidate] = []
    for (level,) in conn.execute(_LEVELS_SQL, (queue,)).fetchall():
        for job_id, task, key, run_at in conn.execute(
                f"SELECT id, task, concurrency_key, run_at FROM runner_job INDEXED BY "
                f"runner_job_queue_claim WHERE state IN {WAITING_SQL} AND queue = ? "
                f"AND priority = ? AND run_at <= ? AND crashes {crashes}{extra} "
                f"ORDER BY run_at LIMIT ?", (queue, level, now, *params, want)):
            found.append(_Candidate(job_id, task, key, queue,
                                    claim_order(level, run_at, now, limits.aging)))
    found.sort(key=lambda c: c.order)
    return found


def _choose(conn: sqlite3.Connection, streams: dict[str, list[_Candidate]], budget: _Budget,
            want: int, now: float, limits: FlowLimits) -> list[_Candidate]:
    chosen: list[_Candidate] = []
    if not limits.weights:
        merged = sorted((c for stream in streams.values() for c in stream),
                        key=lambda c: c.order)
        for c in merged:
            if len(chosen) >= want:
                break
            if budget.allows(c):
                budget.take(c)
                chosen.append(c)
        return chosen
    names = sorted(streams)
    stored = _read_state(conn, [turn_key(q) for q in names]) if names else {}
    counters = {q: stored.get(turn_key(q), (0.0, now))[0] for q in names}
    position = dict.fromkeys(names, 0)
    while len(chosen) < want:
        ready = [q for q in names if _next_allowed(streams[q], position, q, budget)]
        if not ready:
            break
        queue, counters = weighted_pick(counters, limits.weights, ready)
        c = streams[queue][position[queue]]
        position[queue] += 1
        budget.take(c)
        chosen.append(c)
    conn.executemany(
        "INSERT INTO runner_flow (key, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
        "updated_at = excluded.updated_at",
        [(turn_key(q), counters[q], now) for q in names if q in counters])
    return chosen


def _next_allowed(stream: list[_Candidate], position: dict[str, int], queue: str,
                  budget: _Budget) -> bool:
    """Move the queue's position to its next job the limits allow; False when none is left."""
    while position[queue] < len(stream):
        if budget.allows(stream[position[queue]]):
            return True
        position[queue] += 1
    return False


def _next_due(conn: sqlite3.Connection, now: float, waiting: Sequence[str],
              budget: _Budget) -> float | None:
    """With nothing claimed: the earliest later ``run_at``, or next token of a held bucket."""
    times: list[float] = []
    for queue in waiting:
        (later,) = conn.execute(
            f"SELECT min(run_at) FROM runner_job INDEXED BY runner_job_queue_waiting "
            f"WHERE state IN {WAITING_SQL} AND queue = ? AND run_at > ?",
            (queue, now)).fetchone()
        if isinstance(later, (int, float)):
            times.append(later)
    rates = {**{bucket_key("queue", q): r for q, r in budget.limits.queue_rates.items()},
             **{bucket_key("task", t): r for t, r in budget.limits.task_rates.items()}}
    for name, tokens in budget.tokens.items():
        if not has_token(tokens, rates[name]):
            times.append(next_token_at(tokens, now, rates[name]))
    return min(times) if times else None
