"""The claim under flow control: priority aging, queue shares, concurrency and rate limits.

Runs inside the claim's write transaction (:func:`runner.store.sqlite.transitions.claim`),
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
    full_label,
    has_token,
    next_token_at,
    refill,
    turn_key,
)
from runner.store.sqlite.pauses import paused_sets
from runner.store.states import EXECUTING_SQL, WAITING_SQL

#: Levels of priority read per queue and claim; jobs of lower levels wait for a later claim.
MAX_LEVELS = 32


@dataclass(slots=True)
class _Candidate:
    id: int
    """The job's rowid: the claim finds the row again by it, without the id index."""
    task: str
    key: str | None
    queue: str
    order: tuple[int, float] = (0, 0.0)
    """Sort key where levels of priority are merged (:func:`runner.flow.claim_order`);
    a read already in claim order leaves it unset."""


@dataclass
class _Budget:
    """What the limits still allow in this claim."""

    limits: FlowLimits
    running_queue: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    running_task: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    running_key: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    tokens: dict[str, float] = field(default_factory=dict)
    spent: set[str] = field(default_factory=set)
    turns: dict[str, float] = field(default_factory=dict)
    """Each waiting queue's round-robin counter (with shares)."""
    paused_tasks: frozenset[str] = frozenset()
    """Tasks paused by hand (runner_pause): never claimed."""

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
        if not self.limits.limited:
            return True
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

    def unbound(self, queues: Sequence[str], want: int) -> bool:
        """Whether no limit can hold back any of ``want`` more starts from ``queues``:
        every concurrency cap stays above what runs plus ``want``, every bucket holds
        ``want`` tokens. Then each job read (paused and held tasks are left out in SQL)
        may start, and the claim need not check job by job."""
        limits = self.limits
        for q in queues:
            cap = limits.queue_concurrency.get(q, 0)
            if cap and self.running_queue[q] + want > cap:
                return False
            rate = limits.queue_rates.get(q)
            if rate is not None and not has_token(
                    self.tokens.get(bucket_key("queue", q), 1.0) - want + 1, rate):
                return False
        for task, cap in (*limits.task_concurrency.items(), *limits.key_concurrency.items()):
            # A key's count never exceeds its task's: the task's bounds every key's.
            if self.running_task[task] + want > cap:
                return False
        return all(has_token(self.tokens.get(bucket_key("task", t), 1.0) - want + 1, rate)
                   for t, rate in limits.task_rates.items())

    def take_all(self, chosen: Sequence[_Candidate]) -> None:
        """:meth:`take` for each of ``chosen``, counted by queue and task first."""
        queues: dict[str, int] = defaultdict(int)
        tasks: dict[str, int] = defaultdict(int)
        for c in chosen:
            queues[c.queue] += 1
            tasks[c.task] += 1
            if c.key is not None:
                self.running_key[(c.task, c.key)] += 1
        for kind, counts, running in (("queue", queues, self.running_queue),
                                      ("task", tasks, self.running_task)):
            for name, n in counts.items():
                running[name] += n
                bucket = bucket_key(kind, name)
                if bucket in self.tokens:
                    self.tokens[bucket] -= n
                    self.spent.add(bucket)

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

    ids: list[int]
    """Jobs to claim now (their rowids), best first."""
    next_due: float | None
    """With nothing to claim: a later ``run_at``, or the next token of a bucket."""
    full: frozenset[str]
    """Concurrency limits at their cap once these start (:func:`runner.flow.full_label`)."""


def choose_limited(conn: sqlite3.Connection, *, now: float, want: int, queues: Sequence[str],
                   limits: FlowLimits, crashes: str,
                   paused: tuple[frozenset[str], frozenset[str]] | None = None) -> Choice:
    """Up to ``want`` job ids the limits let start now, best first.

    The caller claims the ids in the same transaction: the buckets and queue
    counters are written here as spent on them.

    ``crashes`` is the SQL condition on ``crashes`` ("= 0", or "> 0" for a suspect);
    ``paused`` the (queues, tasks) paused, when the caller read them in this transaction.
    The next due time is the earliest of a later ``run_at`` and the next token of a
    bucket that holds jobs back; None when only concurrency holds them (a finishing
    job frees the slot, and its worker's next claim or the poll interval finds it).
    """
    paused_queues, paused_tasks = paused if paused is not None else paused_sets(conn)
    waiting, budget = _snapshot(conn, now, limits, queues, want)
    waiting = [q for q in waiting if q not in paused_queues]
    budget.paused_tasks = paused_tasks
    open_queues = [q for q in waiting if budget.queue_open(q)]
    if limits.weights:
        chosen = _choose_shared(conn, open_queues, budget, want, now, limits, crashes)
    else:  # one stream over every open queue, in priority order
        stream = _Stream(open_queues, now, want, limits.aging, crashes)
        chosen = []
        if budget.unbound(open_queues, want):  # every job read may start: no check each
            chosen = stream.take_first(conn, budget, want)
        while len(chosen) < want and (c := stream.next_allowed(conn, budget)) is not None:
            stream.take(c, budget)
            chosen.append(c)
    full = budget.full()
    if chosen:
        state = [(name, budget.tokens[name], now) for name in sorted(budget.spent)]
        if limits.weights:
            state += [(turn_key(q), value, now) for q, value in sorted(budget.turns.items())]
        conn.executemany(
            "INSERT INTO runner_flow (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at", state)
        return Choice([c.id for c in chosen], None, full)
    return Choice([], _next_due(conn, now, waiting, budget, want), full)


def _snapshot(conn: sqlite3.Connection, now: float, limits: FlowLimits,
              queues: Sequence[str], want: int) -> tuple[list[str], _Budget]:
    """In one statement: the queues with waiting jobs (this worker's only), how many
    jobs run, and the stored buckets and queue turns; the jobs running per queue, task
    and key only when a concurrency cap could be reached in this claim."""
    parts = ["SELECT 'w', queue, NULL, NULL, NULL FROM runner_queue WHERE waiting > 0"]
    caps = [*limits.queue_concurrency.values(), *limits.task_concurrency.values(),
            *limits.key_concurrency.values()]
    if caps:
        # Counted in the lease index alone (no row read): the breakdown below reads
        # every running row, which only a cap within reach needs.
        parts.append(f"SELECT 'n', NULL, NULL, NULL, count(*) FROM runner_job "
                     f"INDEXED BY runner_job_lease WHERE state = {EXECUTING_SQL}")
    if limits.queue_rates or limits.task_rates or limits.weights:
        parts.append("SELECT 's', key, NULL, value, updated_at FROM runner_flow")
    waiting: list[str] = []
    stored: dict[str, tuple[float, float]] = {}
    budget = _Budget(limits)
    running = 0
    for kind, name, _, value, extra in conn.execute(" UNION ALL ".join(parts)):
        if kind == "w":
            if not queues or name in queues:
                waiting.append(name)
        elif kind == "n":
            running = extra
        else:
            stored[name] = (value, extra)
    if caps and running + want >= min(caps):
        for queue, task, key, count in conn.execute(
                f"SELECT queue, task, concurrency_key, count(*) FROM runner_job "
                f"INDEXED BY runner_job_lease WHERE state = {EXECUTING_SQL} "
                f"GROUP BY queue, task, concurrency_key"):
            budget.running_queue[queue] += count
            budget.running_task[task] += count
            if key is not None:
                budget.running_key[(task, key)] += count
    waiting.sort()
    rates: dict[str, Rate] = {bucket_key("queue", q): r for q, r in limits.queue_rates.items()
                              if q in waiting}
    rates.update((bucket_key("task", t), r) for t, r in limits.task_rates.items())
    for name, rate in rates.items():
        level, updated = stored.get(name, (None, now))
        budget.tokens[name] = refill(level, updated, now, rate)
    if limits.weights:
        budget.turns = {q: stored.get(turn_key(q), (0.0, now))[0] for q in waiting}
    return waiting, budget


def _held(limits: FlowLimits, budget: _Budget) -> tuple[str, list[object]]:
    """SQL leaving out tasks and keys at their limit, so a backlog of held-back jobs
    does not crowd out the jobs behind it."""
    tasks = sorted({t for t in [*limits.task_concurrency, *limits.task_rates]
                    if not budget.task_open(t)} | budget.paused_tasks)
    keys = sorted({pair for pair, n in budget.running_key.items()
                   if n >= limits.key_concurrency.get(pair[0], 0) > 0})
    sql, params = "", []
    if tasks:
        sql += f" AND task NOT IN ({','.join('?' * len(tasks))})"
        params += tasks
    if keys:
        sql += (f" AND (concurrency_key IS NULL OR (task, concurrency_key) NOT IN "
                f"(VALUES {','.join(['(?,?)'] * len(keys))}))")
        params += [part for pair in keys for part in pair]
    return sql, params


class _Stream:
    """Due jobs of some queues, best first, read from the database as far as needed.

    One queue reads ``runner_job_queue_claim``; several (no shares) read
    ``runner_job_claim``. Each level of priority is read oldest due first, and
    the levels are merged by effective priority.
    """

    def __init__(self, queues: Sequence[str], now: float, size: int, aging: float,
                 crashes: str) -> None:
        self.queues = list(queues)
        self.now, self.aging, self.crashes = now, aging, crashes
        self.size = max(1, size)
        self.rows: list[_Candidate] = []
        self.position = 0
        self.taken: set[str] = set()
        self.complete = not self.queues  # every due job these queues may start is read

    def take(self, c: _Candidate, budget: _Budget) -> None:
        self.position += 1
        self.taken.add(c.id)
        budget.take(c)

    def take_first(self, conn: sqlite3.Connection, budget: _Budget,
                   want: int) -> list[_Candidate]:
        """The first ``want`` jobs of a first read, taken without checking each: for a
        budget no limit can bind in this claim (:meth:`_Budget.unbound`)."""
        self._fetch(conn, budget)
        found = self.rows[:want]
        self.position = len(found)
        self.taken.update(c.id for c in found)
        budget.take_all(found)
        return found

    def next_allowed(self, conn: sqlite3.Connection, budget: _Budget) -> _Candidate | None:
        """The next job the limits allow (skipping those they hold back), or None."""
        while True:
            if self.position >= len(self.rows):
                if self.complete:
                    return None
                self._fetch(conn, budget)
                if not self.rows:
                    return None
            c = self.rows[self.position]
            if budget.allows(c):
                return c
            self.position += 1

    def _fetch(self, conn: sqlite3.Connection, budget: _Budget) -> None:
        """Read the jobs the limits allow now, from the best, further than last time.

        Queues, tasks and keys that reached a limit are left out in SQL (so a
        backlog held back costs nothing), and jobs taken in this claim are
        skipped (they stay waiting until the transaction's end).
        """
        if self.rows:
            self.size *= 2
        self.queues = [q for q in self.queues if budget.queue_open(q)]
        self.rows, self.position = [], 0
        self.complete = True
        if not self.queues:
            return
        self.held = _held(budget.limits, budget)
        self._read(conn)
        self.rows = [c for c in self.rows if c.id not in self.taken]

    def settle(self, direct: list[tuple], size: int | None = None) -> bool:
        """Take the rows of a read by best priority, oldest due first (with the lowest
        priority waiting beside each); False when aging may reorder them (the stream
        then reads by levels)."""
        if self.aging > 0 and direct and direct[0][6] != direct[0][5]:
            self.rows, self.complete = [], False
            return False
        self.rows = [_Candidate(job_id, task, key, queue)
                     for job_id, task, key, _, queue, _, _ in direct]
        self.complete = len(direct) < (self.size if size is None else size)
        return True

    def _read(self, conn: sqlite3.Connection) -> None:
        size = self.size + len(self.taken)
        one = len(self.queues) == 1
        index = "runner_job_queue_claim" if one else "runner_job_claim"
        scope = "queue = ?" if one else f"queue IN ({','.join('?' * len(self.queues))})"
        # Best priority first, oldest due first: exact without aging, or when every
        # waiting job has one priority (the lowest is read beside, in the same statement).
        direct = conn.execute(
            f"SELECT rowid, task, concurrency_key, run_at, queue, priority, "
            f"(SELECT min(priority) FROM runner_job INDEXED BY {index} "
            f"WHERE state IN {WAITING_SQL} AND {scope}) FROM runner_job INDEXED BY {index} "
            f"WHERE state IN {WAITING_SQL} AND {scope} AND run_at <= ? "
            f"AND crashes {self.crashes}{self.held[0]} ORDER BY priority DESC, run_at LIMIT ?",
            (*self.queues, *self.queues, self.now, *self.held[1], size)).fetchall()
        if self.settle(direct, size):
            return
        levels = conn.execute(
            f"WITH RECURSIVE level(p, n) AS ("
            f"SELECT (SELECT max(priority) FROM runner_job INDEXED BY {index} "
            f"WHERE state IN {WAITING_SQL} AND {scope}), 1 "
            f"UNION ALL SELECT (SELECT max(priority) FROM runner_job INDEXED BY {index} "
            f"WHERE state IN {WAITING_SQL} AND {scope} AND priority < level.p), n + 1 "
            f"FROM level WHERE level.p IS NOT NULL AND n < {MAX_LEVELS}) "
            f"SELECT p, (SELECT min(run_at) FROM runner_job INDEXED BY {index} "
            f"WHERE state IN {WAITING_SQL} AND {scope} AND priority = level.p) "
            f"FROM level WHERE p IS NOT NULL", (*self.queues, *self.queues, *self.queues)
        ).fetchall()
        found: list[_Candidate] = []
        full = True
        for level, oldest in levels:
            if len(found) >= size and isinstance(oldest, (int, float)):
                # The level's oldest job is the best it can offer: skip the level when it
                # cannot beat the jobs already found.
                found.sort(key=lambda c: c.order)
                if found[size - 1].order <= claim_order(level, oldest, self.now,
                                                             self.aging):
                    full = False
                    continue
            rows = conn.execute(
                f"SELECT rowid, task, concurrency_key, run_at, queue FROM runner_job INDEXED BY "
                f"{index} WHERE state IN {WAITING_SQL} AND {scope} AND priority = ? "
                f"AND run_at <= ? AND crashes {self.crashes}{self.held[0]} "
                f"ORDER BY run_at LIMIT ?",
                (*self.queues, level, self.now, *self.held[1], size)).fetchall()
            full = full and len(rows) < size
            found.extend(_Candidate(job_id, task, key, queue,
                                    claim_order(level, run_at, self.now, self.aging))
                         for job_id, task, key, run_at, queue in rows)
        found.sort(key=lambda c: c.order)
        self.rows = found
        self.complete = full and len(levels) < MAX_LEVELS


def _choose_shared(conn: sqlite3.Connection, queues: Sequence[str], budget: _Budget,
                   want: int, now: float, limits: FlowLimits,
                   crashes: str) -> list[_Candidate]:
    """Up to ``want`` jobs, the queue of each picked by smooth weighted round robin."""
    names = sorted(queues)
    if not names:
        return []
    weight = [limits.weights.get(q, 1) for q in names]
    counter = [budget.turns.get(q, 0.0) for q in names]
    total = sum(weight)
    streams = [_Stream([q], now, -(-want * w // total) + 1, limits.aging, crashes)
               for q, w in zip(names, weight, strict=True)]
    _prime(conn, streams, budget)
    unbound = budget.unbound(names, want)
    chosen: list[_Candidate] = []
    # Smooth weighted round robin (runner.flow.weighted_step, ties to the first name),
    # over lists: this runs once per job claimed.
    ready = list(range(len(names)))
    while len(chosen) < want and ready:
        best, top = ready[0], counter[ready[0]] + weight[ready[0]]
        for i in ready:
            if counter[i] + weight[i] > top:
                best, top = i, counter[i] + weight[i]
        stream = streams[best]
        if unbound and stream.position < len(stream.rows):
            c = stream.rows[stream.position]
            stream.position += 1
            stream.taken.add(c.id)
            chosen.append(c)
        else:
            if unbound:  # the budget is read from here on: bring it up to date
                budget.take_all(chosen)
                unbound = False
            found = stream.next_allowed(conn, budget)
            if found is None:  # nothing more this queue may give: the pick goes to the others
                ready.remove(best)
                total -= weight[best]
                continue
            stream.take(found, budget)
            chosen.append(found)
        for i in ready:
            counter[i] += weight[i]
        counter[best] -= total
    if unbound:
        budget.take_all(chosen)
    budget.turns.update(zip(names, counter, strict=True))
    return chosen


def _prime(conn: sqlite3.Connection, streams: Sequence[_Stream], budget: _Budget) -> None:
    """The first read of several one-queue streams, in one statement.

    A stream whose queue holds more than one priority while aging is on reads
    again by levels (:meth:`_Stream._fetch`).
    """
    held_sql, held_params = _held(budget.limits, budget)
    parts, params = [], []
    for stream in streams:
        parts.append(
            f"SELECT * FROM (SELECT rowid, task, concurrency_key, run_at, queue, priority, "
            f"(SELECT min(priority) FROM runner_job INDEXED BY runner_job_queue_claim "
            f"WHERE state IN {WAITING_SQL} AND queue = ?) FROM runner_job INDEXED BY "
            f"runner_job_queue_claim WHERE state IN {WAITING_SQL} AND queue = ? "
            f"AND run_at <= ? AND crashes {stream.crashes}{held_sql} "
            f"ORDER BY priority DESC, run_at LIMIT ?)")
        params += [stream.queues[0], stream.queues[0], stream.now, *held_params, stream.size]
    found: dict[str, list[tuple]] = {stream.queues[0]: [] for stream in streams}
    for row in conn.execute(" UNION ALL ".join(parts), params):
        found[row[4]].append(row)
    for stream in streams:
        stream.settle(found[stream.queues[0]])


def _next_due(conn: sqlite3.Connection, now: float, waiting: Sequence[str],
              budget: _Budget, want: int) -> float | None:
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
            times.append(next_token_at(tokens, now, rates[name], want))
    return min(times) if times else None
