"""The claim under flow control on PostgreSQL: priority aging, queue shares, concurrency
and rate limits, shared by every worker of every host.

Runs inside the claim's transaction (:func:`runner.store.postgres.transitions.claim`):

* serialisation: a claim under a concurrency or rate limit first takes a
  transaction-level advisory lock per limited name (queue, task; the queue
  turns with shares), in name order, so two hosts never both see the last slot
  or the last token free; claims under no limit take none. Every advisory lock
  name is hashed with the current schema: advisory locks are database-wide, and
  runners in two schemas of one database must not hold each other back;
* keys: a per-key limit locks each key, not its task, once a candidate of that
  key is read, and without waiting (``pg_try_advisory_xact_lock``): a key
  another claim holds is passed over for this claim, so claims of different
  keys of one task run side by side and never wait on each other crosswise.
  The key's running jobs are counted again once its lock is held (a claim that
  held it before may have committed since this claim's first count);
* concurrency: the ``executing`` rows per queue, task and key are counted under
  those locks (the partial lease index: a few hundred rows at most);
* rates: token buckets in ``runner_flow`` rows, read ``FOR UPDATE``, refilled and
  spent here (:func:`runner.flow.refill`);
* shares: each queue's smooth round-robin counter in ``runner_flow``
  (:func:`runner.flow.weighted_step`);
* order: without aging, ``priority DESC, run_at`` straight off the claim index;
  with aging, every level of priority is found with its oldest job (index seeks),
  the levels whose oldest jobs come first are read oldest due first, and merged by
  effective priority (:func:`runner.flow.claim_order`). Rows are read ``FOR UPDATE SKIP
  LOCKED``: a row another claimer holds is skipped, never waited on.

A job over a limit stays waiting with no attempt spent, and the claim reports when the
next token of a blocking bucket is due. One a task's or key's concurrency limit holds
back is parked once this claim's own jobs are claimed (:mod:`runner.store.parking`), so
the next claims do not read it again; a claim that parked some looks again at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from runner.flow import FlowLimits, claim_order, turn_key, weighted_next, weighted_step
from runner.store.claim_budget import Budget, Candidate, Choice, Stream, bucket_rates
from runner.store.postgres.connection import lock_key
from runner.store.states import WAITING, JobState

#: Reads of one stream in a claim (each twice the size of the last) before it gives up.
_MAX_READS = 6

_WAITING = [s.value for s in WAITING]
_EXECUTING = JobState.EXECUTING.value


@dataclass
class _KeyLockingBudget(Budget):
    """The budget of a claim on PostgreSQL: a per-key limit is serialised per key, by a
    lock this claim tries when it first reads a job of that key (module docstring)."""

    locked_keys: set[tuple[str, str]] = field(default_factory=set)
    """Keys (task, key) whose lock this claim holds, their running jobs counted afresh."""
    passed_keys: set[tuple[str, str]] = field(default_factory=set)
    """Keys whose lock another claim held: passed over for this claim."""

    def key_open(self, task: str, key: str | None) -> bool:
        cap = self.limits.key_concurrency.get(task, 0)
        if not cap or key is None:
            return True
        pair = (task, key)
        return pair in self.locked_keys and self.running_key[pair] < cap

    def lock_keys(self, conn: psycopg.Connection, candidates: Sequence[Candidate]) -> None:
        """Lock the limited keys of ``candidates`` not met before and count their running
        jobs afresh; a key another claim holds is passed over (see the module docstring)."""
        pairs = sorted({(c.task, c.key) for c in candidates
                        if c.key is not None and self.limits.key_concurrency.get(c.task, 0)}
                       - self.locked_keys - self.passed_keys)
        if not pairs:
            return
        names = [key_lock_name(task, key) for task, key in pairs]
        got = dict(conn.execute(
            f"SELECT name, pg_try_advisory_xact_lock({lock_key('name')}) "
            "FROM unnest(%s::text[]) AS n(name) ORDER BY name", (names,)).fetchall())
        locked = [pair for pair, name in zip(pairs, names, strict=True) if got[name]]
        self.passed_keys.update(pair for pair, name in zip(pairs, names, strict=True)
                                if not got[name])
        if not locked:
            return
        # A statement of its own: its snapshot is taken after the locks are held.
        counted = {(t, k): n for t, k, n in conn.execute(
            "SELECT j.task, j.concurrency_key, count(*) FROM runner_job j "
            "JOIN unnest(%s::text[], %s::text[]) AS l(task, key) "
            "ON j.task = l.task AND j.concurrency_key = l.key "
            f"WHERE j.state = '{_EXECUTING}' GROUP BY j.task, j.concurrency_key",
            ([t for t, _ in locked], [k for _, k in locked])).fetchall()}
        for pair in locked:
            self.running_key[pair] = counted.get(pair, 0)
        self.locked_keys.update(locked)

    def keys_held(self) -> set[tuple[str, str]]:
        return super().keys_held() | self.passed_keys

    def key_counted(self, task: str, key: str) -> bool:
        return (task, key) in self.locked_keys


def needs_flow(conn: psycopg.Connection, limits: FlowLimits | None,
               queues: Sequence[str]) -> bool:
    """Whether the claim must go through :func:`choose`.

    Aging alone changes nothing while every waiting job has one priority (oldest
    due first either way): then the one-statement claim serves. ``queues``: the
    worker's (each read in its own range of the claim index), or every queue.
    """
    if limits is None or limits.plain:
        return False
    if limits.limited or limits.weights:
        return True
    if not queues:
        top, bottom = conn.execute(
            "SELECT max(priority), min(priority) FROM runner_job "
            "WHERE state = ANY(%s) AND parked IS NULL", (_WAITING,)).fetchone()
    else:
        top, bottom = conn.execute(
            "SELECT max(e.top), min(e.bottom) FROM unnest(%s::text[]) AS q(name) "
            "CROSS JOIN LATERAL (SELECT max(priority) AS top, min(priority) AS bottom "
            "FROM runner_job WHERE state = ANY(%s) AND parked IS NULL AND queue = q.name) e",
            (list(queues), _WAITING)).fetchone()
    return top is not None and top != bottom


def choose(conn: psycopg.Connection, *, now: float, want: int, queues: Sequence[str],
           limits: FlowLimits, suspect: bool, paused_queues: Sequence[str],
           paused_tasks: Sequence[str]) -> Choice:
    """Up to ``want`` job ids the limits let start now, best first.

    The caller claims the ids in the same transaction: the buckets and queue
    turns are written here as spent on them. ``suspect``: choose among the jobs
    whose worker died (``crashes > 0``) instead of the others.
    """
    _lock(conn, limits)
    every, budget = _snapshot(conn, now, limits, queues)
    waiting = [q for q in every if q not in set(paused_queues)]
    budget.paused_tasks = frozenset(paused_tasks)
    open_queues = [q for q in waiting if budget.queue_open(q)]
    crashes = "> 0" if suspect else "= 0"
    if limits.weights:
        chosen = _choose_shared(conn, open_queues, budget, want, now, limits, crashes)
    else:
        stream: _Stream | _Merged
        if len(open_queues) > 1 and (queues or open_queues != every):
            # Some queue with waiting jobs is left out (paused, at a limit, or not this
            # worker's): the claim index of every queue would read its jobs too.
            stream = _Merged(open_queues, now, want, limits.aging, crashes)
        else:
            stream = _Stream(open_queues, now, want, limits.aging, crashes)
            stream.everywhere = not queues
        chosen = []
        while len(chosen) < want and (c := stream.next_allowed(conn, budget)) is not None:
            stream.take(c, budget)
            chosen.append(c)
    full = budget.full()
    if not chosen:
        # Jobs passed over to park: a claim reads a bounded number, so look again at once,
        # past them, rather than wait for a later due time.
        next_due = now if budget.parking else _next_due(conn, now, waiting, budget, want)
        return Choice([], next_due, full, budget.parking)
    state = budget.changed_state()
    if state:
        conn.execute(
            "INSERT INTO runner_flow (key, value, updated_at) "
            "SELECT k, v, %s FROM unnest(%s::text[], %s::float8[]) AS s(k, v) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (now, [k for k, _ in state], [v for _, v in state]))
    return Choice([c.id for c in chosen], None, full, budget.parking)


def _lock(conn: psycopg.Connection, limits: FlowLimits) -> None:
    """The advisory locks of every limited name, in order (see the module docstring)."""
    names = {f"queue {q}" for q in [*limits.queue_concurrency, *limits.queue_rates]}
    names.update(f"task {t}" for t in [*limits.task_concurrency, *limits.task_rates])
    if limits.weights:
        names.add("turns")
    for name in sorted(names):  # one at a time, in order: two claims never lock crosswise
        conn.execute(f"SELECT pg_advisory_xact_lock({lock_key('%s')})",
                     (f"runner flow {name}",))


def key_lock_name(task: str, key: str) -> str:
    """The name of the advisory lock a claim holds while it may start jobs of a task's key."""
    return f"runner flow key {task}\x1f{key}"


def _snapshot(conn: psycopg.Connection, now: float, limits: FlowLimits,
              queues: Sequence[str]) -> tuple[list[str], Budget]:
    """The queues with waiting jobs (this worker's only), the jobs running per queue,
    task and key, and the stored buckets and queue turns (locked)."""
    budget = _KeyLockingBudget(limits)
    waiting = sorted(q for (q,) in conn.execute(
        "SELECT queue FROM runner_queue GROUP BY queue HAVING sum(waiting) > 0").fetchall()
        if not queues or q in queues)
    if limits.queue_concurrency or limits.task_concurrency or limits.key_concurrency:
        for queue, task, key, n in conn.execute(
                "SELECT queue, task, concurrency_key, count(*) FROM runner_job "
                "WHERE state = %s GROUP BY queue, task, concurrency_key", (_EXECUTING,)):
            budget.count_running(queue, task, key, n)
    rates = bucket_rates(limits, waiting)
    names = sorted(rates)
    if limits.weights:
        names += [turn_key(q) for q in waiting]
    stored: dict[str, tuple[float, float]] = {}
    if names:
        stored = {k: (v, at) for k, v, at in conn.execute(
            "SELECT key, value, updated_at FROM runner_flow WHERE key = ANY(%s) "
            "ORDER BY key FOR UPDATE", (names,)).fetchall()}
    budget.fill(rates, stored, waiting, now)
    return waiting, budget


def _allowed(budget: Budget, now: float, crashes: str) -> tuple[str, dict[str, object]]:
    """The condition of a due job whose task and key no limit holds back now, and its
    parameters (with ``waiting``, the waiting states)."""
    tasks, pairs = budget.held()
    params: dict[str, object] = {"waiting": _WAITING, "now": now, "tasks": tasks,
                                 "key_tasks": [t for t, _ in pairs],
                                 "keys": [k for _, k in pairs]}
    due = f"run_at <= %(now)s AND crashes {crashes}"
    if tasks:
        due += " AND task <> ALL(%(tasks)s)"
    if pairs:
        due += (" AND (concurrency_key IS NULL OR (task, concurrency_key) NOT IN "
                "(SELECT * FROM unnest(%(key_tasks)s::text[], %(keys)s::text[])))")
    return due, params


class _Stream(Stream):
    """Due jobs of some queues, best first, read from the database as far as needed
    (:class:`runner.store.claim_budget.Stream`); a row read once is not read again."""

    def __init__(self, queues: Sequence[str], now: float, size: int, aging: float,
                 crashes: str) -> None:
        super().__init__(queues, now, size, aging, crashes)
        self.seen: list[str] = []
        self.reads = 0

    #: The stream reads every queue with waiting jobs (no queue left out).
    everywhere = False

    def _fetch(self, conn: psycopg.Connection, budget: Budget) -> None:
        """Read further, leaving out queues, tasks and keys at a limit and rows read before
        (a row the limits held back stays held for the rest of the claim)."""
        if self.reads:  # faster past a backlog that only held back jobs filled
            self.size *= 8 if budget.parking else 2
        self.reads += 1
        still_open = [q for q in self.queues if budget.queue_open(q)]
        self.everywhere = self.everywhere and still_open == self.queues
        self.queues = still_open
        self.rows, self.position = [], 0
        self.complete = True
        if not self.queues:
            return
        due, params = _allowed(budget, self.now, self.crashes)
        params.update(queues=self.queues, queue=self.queues[0], size=self.size,
                      seen=self.seen)
        # One queue reads its range of the queue's claim index (an equality, so in
        # order), every queue the claim index.
        scope = "state = ANY(%(waiting)s) AND parked IS NULL" + (
            " AND queue = %(queue)s" if len(self.queues) == 1 else
            "" if self.everywhere else " AND queue = ANY(%(queues)s)")
        if self.seen:
            due += " AND id <> ALL(%(seen)s)"
        columns = "id, task, concurrency_key, run_at, queue, priority"
        if self.aging <= 0:
            rows = conn.execute(
                f"SELECT {columns} FROM runner_job WHERE {scope} AND {due} "
                f"ORDER BY priority DESC, run_at LIMIT %(size)s FOR UPDATE SKIP LOCKED",
                params).fetchall()
            self.complete = len(rows) < self.size
        else:
            # Every level of priority with its oldest job, the best that level can
            # offer: a level below the busiest ones may hold a job that waited long
            # enough to beat them all, so none is left out (two index seeks each).
            levels = conn.execute(
                f"WITH RECURSIVE level(p) AS ("
                f"SELECT (SELECT max(priority) FROM runner_job WHERE {scope}) "
                f"UNION ALL SELECT (SELECT max(priority) FROM runner_job WHERE {scope} "
                f"AND priority < level.p) FROM level WHERE level.p IS NOT NULL) "
                f"SELECT p, (SELECT min(run_at) FROM runner_job WHERE {scope} "
                f"AND priority = level.p) FROM level WHERE p IS NOT NULL", params).fetchall()
            ranked = sorted((self.best_of_level(p, oldest), p) for p, oldest in levels)
            # Within a level, older is better; so the best ``size`` of all are among the
            # best ``size`` of the ``size`` levels whose oldest jobs come first.
            params["levels"] = [p for _, p in ranked[:self.size]]
            rows = conn.execute(
                f"SELECT c.* FROM unnest(%(levels)s::bigint[]) AS level(p) CROSS JOIN "
                f"LATERAL (SELECT {columns} FROM runner_job WHERE {scope} "
                f"AND priority = level.p AND {due} ORDER BY run_at LIMIT %(size)s "
                f"FOR UPDATE SKIP LOCKED) c", params).fetchall()
            per_level: dict[int, int] = defaultdict(int)
            for r in rows:
                per_level[r[5]] += 1
            self.complete = all(n < self.size for n in per_level.values())
            if len(ranked) > self.size:
                # A level left out may beat what was read past its oldest job (a level's
                # oldest may be held back or not due): that part is read again later.
                bound = ranked[self.size][0]
                rows = [r for r in rows if claim_order(r[5], r[3], self.now, self.aging)
                        <= bound]
                self.complete = False
        if self.reads >= _MAX_READS:
            self.complete = True
        self.rows = sorted((Candidate(r[0], r[1], r[2], r[4],
                                       claim_order(r[5], r[3], self.now, self.aging))
                            for r in rows), key=lambda c: c.order)
        self.seen += [c.id for c in self.rows]
        if isinstance(budget, _KeyLockingBudget):
            budget.lock_keys(conn, self.rows)


class _Merged:
    """Due jobs of several queues, best first, as one stream: a one-queue stream each,
    the best head taken (the claim index of every queue would read the jobs of the
    queues left out too: paused, at a limit, or not this worker's)."""

    def __init__(self, queues: Sequence[str], now: float, want: int, aging: float,
                 crashes: str) -> None:
        self.streams = [_Stream([q], now, want, aging, crashes) for q in queues]
        self.picked: _Stream | None = None

    def next_allowed(self, conn: psycopg.Connection, budget: Budget) -> Candidate | None:
        best: Candidate | None = None
        for stream in self.streams:
            c = stream.next_allowed(conn, budget)
            if c is not None and (best is None or (c.order, str(c.id)) < (best.order,
                                                                          str(best.id))):
                best, self.picked = c, stream
        return best

    def take(self, c: Candidate, budget: Budget) -> None:
        assert self.picked is not None
        self.picked.take(c, budget)


def _choose_shared(conn: psycopg.Connection, queues: Sequence[str], budget: Budget,
                   want: int, now: float, limits: FlowLimits,
                   crashes: str) -> list[Candidate]:
    """Up to ``want`` jobs, the queue of each picked by smooth weighted round robin.

    Only queues with a job they may give take part: one with nothing (only jobs due
    later, or all held back) takes no turn and keeps its counter, as
    :func:`runner.flow.weighted_pick` says. Its weight in every other pick's total
    would hand its turns round to the others, and the credit it gathered would let
    it take more than its share once its jobs come due.
    """
    names = sorted(queues)
    if not names:
        return []
    due, params = _allowed(budget, now, crashes)
    params["queues"] = names
    names = [q for (q,) in conn.execute(
        f"SELECT q FROM unnest(%(queues)s::text[]) AS q WHERE EXISTS (SELECT 1 FROM "
        f"runner_job WHERE state = ANY(%(waiting)s) AND parked IS NULL AND queue = q "
        f"AND {due}) ORDER BY q",
        params).fetchall()]
    if not names:
        return []
    counters = {q: budget.turns.get(q, 0.0) for q in names}
    total = sum(limits.weights.get(q, 1) for q in names)
    streams = {q: _Stream([q], now, -(-want * limits.weights.get(q, 1) // total) + 1,
                          limits.aging, crashes) for q in names}
    chosen: list[Candidate] = []
    ready = list(names)
    while len(chosen) < want and ready:
        queue = weighted_next(counters, limits.weights, ready)
        stream = streams[queue]
        c = stream.next_allowed(conn, budget)
        if c is None:  # nothing more this queue may give: the pick goes to the others
            ready.remove(queue)
            continue
        weighted_step(counters, limits.weights, ready)
        stream.take(c, budget)
        chosen.append(c)
    budget.turns.update(counters)
    return chosen


def _next_due(conn: psycopg.Connection, now: float, waiting: Sequence[str],
              budget: Budget, want: int) -> float | None:
    """With nothing claimed: the earliest later ``run_at``, or next token of a held bucket."""
    times: list[float] = []
    if waiting:
        # Queue by queue, from the first job due after now: never the jobs due before.
        (later,) = conn.execute(
            "SELECT min(first.run_at) FROM unnest(%s::text[]) AS q(name) CROSS JOIN LATERAL "
            "(SELECT run_at FROM runner_job WHERE state = ANY(%s) AND queue = q.name "
            "AND run_at > %s ORDER BY run_at LIMIT 1) first",
            (list(waiting), _WAITING, now)).fetchone()
        if later is not None:
            times.append(later)
    times += budget.token_times(now, want)
    return min(times) if times else None
