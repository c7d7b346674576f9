"""The claim under flow control: priority aging, queue shares, concurrency and rate limits.

Runs inside the claim's write transaction (:func:`runner.store.sqlite.transitions.claim`),
so every worker of every process reads and updates the same counts and buckets:

* concurrency: the ``executing`` rows per queue, per task and per (task, key)
  are counted (a few hundred rows at most, through the lease index);
* rates: token buckets in ``runner_flow``, refilled and spent here;
* shares: each queue's smooth round-robin counter in ``runner_flow``;
* order: per queue, every level of priority is found with its oldest job through
  ``runner_job_queue_claim`` (index seeks, never a read of the backlog), the levels
  whose oldest job can make the claim are read oldest due first, and merged by
  effective priority (:func:`runner.flow.claim_order`).

A job over a limit stays waiting, with no attempt spent, and the claim reports
when the next token of a blocking bucket is due so the worker sleeps until then.
One a task's or key's concurrency limit holds back is parked as it is passed over
(:mod:`runner.store.parking`), so the next claims do not read it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from runner.flow import FlowLimits, claim_order
from runner.store.claim_budget import Budget, Candidate, Choice, Stream, bucket_rates
from runner.store.sqlite.backlog import OLDEST_WAITING_AFTER, due_below_top, top_level
from runner.store.sqlite.conditions import CLAIMABLE_WHERE
from runner.store.sqlite.pauses import paused_sets
from runner.store.sqlite.shares import RETURNING, Take, count_taken, take_shares
from runner.store.states import EXECUTING_SQL


@dataclass(frozen=True)
class Taken(Choice):
    """A choice already claimed here (queue shares no limit binds: :mod:`.shares`)."""

    rows: list[tuple] = field(default_factory=list)
    """The claimed rows, best first: :data:`runner.store.sqlite.shares.RETURNING`."""


def choose_limited(conn: sqlite3.Connection, *, now: float, want: int, queues: Sequence[str],
                   limits: FlowLimits, crashes: str,
                   paused: tuple[frozenset[str], frozenset[str]] | None = None,
                   take: Take | None = None,
                   park: Callable[[list[tuple[int | str, str, str]]], None] | None = None,
                   ahead: bool = False,
                   plain: Callable[[int, str], list[tuple]] | None = None) -> Choice:
    """Up to ``want`` job ids the limits let start now, best first.

    The caller claims the ids in the same transaction: the buckets and queue
    counters are written here as spent on them. Given ``take`` (how the caller claims
    rows), a claim of queue shares that no limit can bind is made here, and the
    :class:`Taken` returned holds the claimed rows.

    ``park`` parks the jobs a concurrency limit holds back as they are passed over
    (:mod:`runner.store.parking`), so a read further in this claim does not meet them.
    ``crashes`` is the SQL condition on ``crashes`` ("= 0", or "> 0" for a suspect);
    ``paused`` the (queues, tasks) paused, when the caller read them in this transaction.
    ``plain`` (without weights, when aging cannot reorder the jobs) claims the best due
    jobs of the claim index in one statement (wanted, columns returned): it takes them
    when no limit can bind, no queue or task is left out and every queue with a limit
    of its own has waiting jobs by its count, so no job is read into Python first.
    The next due time is the earliest of a later ``run_at`` and the next token of a
    bucket that holds jobs back; None when only concurrency holds them (a finishing
    job frees the slot, and its worker's next claim or the poll interval finds it).
    """
    paused_queues, paused_tasks = paused if paused is not None else paused_sets(conn)
    every, budget, levels, due = _snapshot(conn, now, limits, queues, want, crashes)
    budget.park = park
    waiting = [q for q in every if q not in paused_queues]
    budget.paused_tasks = paused_tasks
    open_queues = [q for q in waiting if budget.queue_open(q)]
    # Queue shares are taken among the queues with a job due: one whose jobs are all due
    # later takes no turn (see _choose_shared).
    sharing = [q for q in open_queues if q in due]
    taken: list[tuple] | None = None
    if (limits.weights and take is not None and sharing
            and not levels.intersection(sharing) and budget.unbound(sharing, want)):
        names = sorted(sharing)
        taken = take_shares(conn, names, [limits.weights.get(q, 1) for q in names], budget,
                            want, now, crashes, _held(limits, budget), take, runs=ahead)
    chosen: list[Candidate] = []
    if taken is None and limits.weights:
        chosen = _choose_shared(conn, sharing, budget, want, now, limits, crashes)
    elif (plain is not None and open_queues == every and not paused_tasks
          and budget.unbound(open_queues, want)
          and _every_limited_queue_counted(limits, every)):
        taken = _take_plain(plain, want, budget)
    elif taken is None:  # every open queue, in priority order
        stream: _Stream | _Merged
        if len(open_queues) > 1 and (queues or open_queues != every):
            # Some queue with waiting jobs is left out (paused, at a limit, or not this
            # worker's): the claim index of every queue would read its jobs too.
            stream = _Merged(conn, open_queues, now, want, limits.aging, crashes, budget)
        else:
            stream = _Stream(open_queues, now, want, limits.aging, crashes)
            stream.everywhere = not queues
            if budget.unbound(open_queues, want):  # every job read may start: no check each
                chosen = stream.take_first(conn, budget, want)
        while len(chosen) < want and (c := stream.next_allowed(conn, budget)) is not None:
            stream.take(c, budget)
            chosen.append(c)
    if budget.park is not None:
        budget.park(budget.parking)
    full = budget.full()
    if chosen or taken:
        state = budget.changed_state()
        if state:  # one statement, not one per row: each step lets the other threads run
            conn.execute(
                f"INSERT INTO runner_flow (key, value, updated_at) VALUES "
                f"{','.join(['(?, ?, ?)'] * len(state))} ON CONFLICT (key) DO UPDATE "
                f"SET value = excluded.value, updated_at = excluded.updated_at",
                [part for name, value in state for part in (name, value, now)])
        if taken is not None:
            return Taken([r[0] for r in taken], None, full, rows=taken)
        return Choice([c.id for c in chosen], None, full)
    return Choice([], _next_due(conn, now, waiting, budget, want), full)


def _snapshot(conn: sqlite3.Connection, now: float, limits: FlowLimits,
              queues: Sequence[str], want: int,
              crashes: str) -> tuple[list[str], Budget, set[str], set[str]]:
    """In one statement: the queues with waiting jobs (this worker's only), how many
    jobs run, and the stored buckets and queue turns; the jobs running per queue, task
    and key only when a concurrency cap could be reached in this claim. Then, with
    shares and aging, the queues holding more than one level of priority (aging may
    reorder their jobs, so :mod:`.shares` does not claim them); last, with shares, the
    queues with a job due now (``crashes`` as the claim's)."""
    spread = limits.weights and limits.aging > 0
    levels = (f"(SELECT {{}}(priority) FROM runner_job INDEXED BY runner_job_queue_claim "
              f"WHERE {CLAIMABLE_WHERE} AND queue = runner_queue.queue)")
    kind, params = "'w'", []
    if limits.weights:
        # A job due at the queue's highest level of priority (a seek; reading on past
        # jobs due later would read them all), else 'u' when lower levels may hold one.
        this = " AND queue = runner_queue.queue"
        kind = (f"CASE WHEN EXISTS (SELECT 1 FROM runner_job INDEXED BY "
                f"runner_job_queue_claim WHERE {CLAIMABLE_WHERE}{this} "
                f"AND {top_level('runner_job_queue_claim', this)} "
                f"AND run_at <= ? AND crashes {crashes}) THEN 'd' "
                f"WHEN {levels.format('min')} < {levels.format('max')} THEN 'u' ELSE 'w' END")
        params.append(now)
    parts = [f"SELECT {kind}, queue, {levels.format('max')}, {levels.format('min')} "
             f"FROM runner_queue WHERE waiting > 0" if spread else
             f"SELECT {kind}, queue, NULL, NULL FROM runner_queue WHERE waiting > 0"]
    caps = [*limits.queue_concurrency.values(), *limits.task_concurrency.values(),
            *limits.key_concurrency.values()]
    if caps:
        # Counted in the lease index alone (no row read): the breakdown below reads
        # every running row, which only a cap within reach needs.
        parts.append(f"SELECT 'n', NULL, NULL, count(*) FROM runner_job "
                     f"INDEXED BY runner_job_lease WHERE state = {EXECUTING_SQL}")
    if limits.queue_rates or limits.task_rates or limits.weights:
        parts.append("SELECT 's', key, value, updated_at FROM runner_flow")
    waiting: list[str] = []
    several: set[str] = set()
    due: set[str] = set()
    stored: dict[str, tuple[float, float]] = {}
    budget = Budget(limits)
    running = 0
    # As few columns as will do: Python's sqlite3 lets other threads run around each.
    for kind, name, value, extra in conn.execute(" UNION ALL ".join(parts), params):
        if kind in ("w", "d", "u"):
            if not queues or name in queues:
                waiting.append(name)
                if value != extra:
                    several.add(name)
                if kind == "d" or (kind == "u" and due_below_top(conn, name, now,
                                                                 f" AND crashes {crashes}")):
                    due.add(name)
        elif kind == "n":
            running = extra
        else:
            stored[name] = (value, extra)
    if caps and running + want >= min(caps):
        for queue, task, key, count in conn.execute(
                f"SELECT queue, task, concurrency_key, count(*) FROM runner_job "
                f"INDEXED BY runner_job_lease WHERE state = {EXECUTING_SQL} "
                f"GROUP BY queue, task, concurrency_key"):
            budget.count_running(queue, task, key, count)
    waiting.sort()
    budget.fill(bucket_rates(limits, waiting), stored, waiting, now)
    return waiting, budget, several, due


def _every_limited_queue_counted(limits: FlowLimits, waiting: Sequence[str]) -> bool:
    """Whether every queue with a limit of its own is among ``waiting`` (the queues whose
    count says jobs wait). The plain claim takes from every queue of the claim index: a
    limited queue whose count drifted to 0 (fixed by upkeep) would escape its limit."""
    counted = set(waiting)
    return all(q in counted for q in (*limits.queue_concurrency, *limits.queue_rates))


def _take_plain(plain: Callable[[int, str], list[tuple]], want: int,
                budget: Budget) -> list[tuple]:
    """The rows ``plain`` claims, best first (ties as updated: by rowid, as the claim
    index has them), counted in ``budget``."""
    keyed = bool(budget.limits.key_concurrency)
    rows = plain(want, RETURNING + (", concurrency_key" if keyed else ""))
    rows.sort(key=lambda r: (-r[3], r[4]))
    count_taken(budget, rows, keyed)
    return rows


def _held(limits: FlowLimits, budget: Budget) -> tuple[str, list[object]]:
    """SQL leaving out tasks and keys at their limit, so a backlog of held-back jobs
    does not crowd out the jobs behind it."""
    tasks, keys = budget.held()
    sql, params = "", []
    if tasks:
        sql += f" AND task NOT IN ({','.join('?' * len(tasks))})"
        params += tasks
    if keys:
        sql += (f" AND (concurrency_key IS NULL OR (task, concurrency_key) NOT IN "
                f"(VALUES {','.join(['(?,?)'] * len(keys))}))")
        params += [part for pair in keys for part in pair]
    return sql, params


class _Stream(Stream):
    """Due jobs of some queues, best first, read from the database as far as needed.

    One queue reads ``runner_job_queue_claim``; every queue with waiting jobs (no
    shares) reads ``runner_job_claim``. Each level of priority is read oldest due
    first, and the levels are merged by effective priority.
    """

    #: The stream reads every queue with waiting jobs (no queue left out).
    everywhere = False

    def take_first(self, conn: sqlite3.Connection, budget: Budget,
                   want: int) -> list[Candidate]:
        """The first ``want`` jobs of a first read, taken without checking each: for a
        budget no limit can bind in this claim (:meth:`Budget.unbound`)."""
        self._fetch(conn, budget)
        found = self.rows[:want]
        self.position = len(found)
        self.taken.update(c.id for c in found)
        budget.take_all(found)
        return found

    def _fetch(self, conn: sqlite3.Connection, budget: Budget) -> None:
        """Read the jobs the limits allow now, from the best, further than last time.

        Queues, tasks and keys that reached a limit are left out in SQL (so a
        backlog held back costs nothing), and jobs taken in this claim are
        skipped (they stay waiting until the transaction's end).
        """
        if self.rows:
            self.size *= 2
        if budget.park is not None:  # so that this read passes over them no more
            budget.park(budget.parking)
        still_open = [q for q in self.queues if budget.queue_open(q)]
        self.everywhere = self.everywhere and still_open == self.queues
        self.queues = still_open
        self.rows, self.position = [], 0
        self.complete = True
        if not self.queues:
            return
        self.held = _held(budget.limits, budget)
        self._read(conn)
        self.rows = [c for c in self.rows if c.id not in self.taken]

    def settle(self, direct: list[tuple], size: int | None = None) -> bool:
        """Take the rows of a read of the highest level of priority, oldest due first
        (with the lowest priority waiting beside each); False when aging may reorder
        them, or when they are fewer than wanted and lower levels may hold more (the
        stream then reads by levels)."""
        several = not direct or direct[0][6] != direct[0][5]
        short = len(direct) < (self.size if size is None else size)
        if several and (self.aging > 0 or short):
            self.rows, self.complete = [], False
            return False
        self.rows = [Candidate(job_id, task, key, queue,
                               claim_order(priority, run_at, self.now, self.aging))
                     for job_id, task, key, run_at, queue, priority, _ in direct]
        self.complete = len(direct) < (self.size if size is None else size)
        return True

    def _read(self, conn: sqlite3.Connection) -> None:
        size = self.size + len(self.taken)
        one = len(self.queues) == 1
        index = "runner_job_queue_claim" if one else "runner_job_claim"
        scope, queues = ("", ()) if self.everywhere and not one else (
            " AND queue = ?" if one else f" AND queue IN ({','.join('?' * len(self.queues))})",
            tuple(self.queues))
        # Best priority first, oldest due first: exact without aging, or when every
        # waiting job has one priority (the lowest is read beside, in the same statement).
        direct = conn.execute(
            f"SELECT rowid, task, concurrency_key, run_at, queue, priority, "
            f"(SELECT min(priority) FROM runner_job INDEXED BY {index} "
            f"WHERE {CLAIMABLE_WHERE}{scope}) FROM runner_job INDEXED BY {index} "
            f"WHERE {CLAIMABLE_WHERE}{scope} AND {top_level(index, scope)} AND run_at <= ? "
            f"AND crashes {self.crashes}{self.held[0]} ORDER BY run_at LIMIT ?",
            (*queues, *queues, *queues, self.now, *self.held[1], size)).fetchall()
        if self.settle(direct, size):
            return
        # Every level of priority and its oldest job: the best that level can offer. A
        # level below the busiest ones may hold a job that waited long enough to beat
        # them all, so none is left out; two index seeks each.
        levels = conn.execute(
            f"WITH RECURSIVE level(p) AS ("
            f"SELECT (SELECT max(priority) FROM runner_job INDEXED BY {index} "
            f"WHERE {CLAIMABLE_WHERE}{scope}) "
            f"UNION ALL SELECT (SELECT max(priority) FROM runner_job INDEXED BY {index} "
            f"WHERE {CLAIMABLE_WHERE}{scope} AND priority < level.p) "
            f"FROM level WHERE level.p IS NOT NULL) "
            f"SELECT p, (SELECT min(run_at) FROM runner_job INDEXED BY {index} "
            f"WHERE {CLAIMABLE_WHERE}{scope} AND priority = level.p) "
            f"FROM level WHERE p IS NOT NULL", (*queues, *queues, *queues)
        ).fetchall()
        found: list[Candidate] = []
        full = True
        for best, level in sorted((self.best_of_level(level, oldest), level)
                                  for level, oldest in levels):
            if len(found) >= size:
                # Levels come best first: once the next one cannot beat the jobs already
                # found, no later one can.
                found.sort(key=lambda c: c.order)
                if found[size - 1].order <= best:
                    full = False
                    break
            rows = conn.execute(
                f"SELECT rowid, task, concurrency_key, run_at, queue FROM runner_job INDEXED BY "
                f"{index} WHERE {CLAIMABLE_WHERE}{scope} AND priority = ? "
                f"AND run_at <= ? AND crashes {self.crashes}{self.held[0]} "
                f"ORDER BY run_at LIMIT ?",
                (*queues, level, self.now, *self.held[1], size)).fetchall()
            full = full and len(rows) < size
            found.extend(Candidate(job_id, task, key, queue,
                                    claim_order(level, run_at, self.now, self.aging))
                         for job_id, task, key, run_at, queue in rows)
        found.sort(key=lambda c: c.order)
        self.rows = found
        self.complete = full


class _Merged:
    """Due jobs of several queues, best first, as one stream: a one-queue stream each,
    the best head taken (the claim index of every queue would read the jobs of the
    queues left out too: paused, at a limit, or not this worker's)."""

    def __init__(self, conn: sqlite3.Connection, queues: Sequence[str], now: float,
                 want: int, aging: float, crashes: str, budget: Budget) -> None:
        self.streams = [_Stream([q], now, want, aging, crashes) for q in queues]
        _prime(conn, self.streams, budget)
        self.picked: _Stream | None = None

    def next_allowed(self, conn: sqlite3.Connection, budget: Budget) -> Candidate | None:
        best: Candidate | None = None
        for stream in self.streams:
            c = stream.next_allowed(conn, budget)
            # Ties in order as the claim index has them: by rowid.
            if c is not None and (best is None or (c.order, c.id) < (best.order, best.id)):
                best, self.picked = c, stream
        return best

    def take(self, c: Candidate, budget: Budget) -> None:
        assert self.picked is not None
        self.picked.take(c, budget)


def _choose_shared(conn: sqlite3.Connection, queues: Sequence[str], budget: Budget,
                   want: int, now: float, limits: FlowLimits,
                   crashes: str) -> list[Candidate]:
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
    chosen: list[Candidate] = []
    # Smooth weighted round robin (runner.flow.weighted_step, ties to the first name),
    # over lists: this runs once per job claimed. A queue with nothing it may give
    # (only jobs due later, or all held back) takes no turn and keeps its counter: its
    # weight in every other pick's total would hand its turns round to the others,
    # and the credit it gathered would let it take more than its share once its
    # jobs come due.
    ready = [i for i, stream in enumerate(streams)
             if stream.next_allowed(conn, budget) is not None]
    total = sum(weight[i] for i in ready)
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


_TOP_OF_QUEUE = top_level("runner_job_queue_claim", " AND queue = ?")


def _prime(conn: sqlite3.Connection, streams: Sequence[_Stream], budget: Budget) -> None:
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
            f"WHERE {CLAIMABLE_WHERE} AND queue = ?) FROM runner_job INDEXED BY "
            f"runner_job_queue_claim WHERE {CLAIMABLE_WHERE} AND queue = ? "
            f"AND {_TOP_OF_QUEUE} AND run_at <= ? AND crashes {stream.crashes}{held_sql} "
            f"ORDER BY run_at LIMIT ?)")
        params += [stream.queues[0], stream.queues[0], stream.queues[0], stream.now,
                   *held_params, stream.size]
    found: dict[str, list[tuple]] = {stream.queues[0]: [] for stream in streams}
    for row in conn.execute(" UNION ALL ".join(parts), params):
        found[row[4]].append(row)
    for stream in streams:
        stream.settle(found[stream.queues[0]])


def _next_due(conn: sqlite3.Connection, now: float, waiting: Sequence[str],
              budget: Budget, want: int) -> float | None:
    """With nothing claimed: the earliest later ``run_at``, or next token of a held bucket."""
    times: list[float] = []
    for queue in waiting:
        (later,) = conn.execute(OLDEST_WAITING_AFTER, (queue, now)).fetchone()
        if isinstance(later, (int, float)):
            times.append(later)
    times += budget.token_times(now, want)
    return min(times) if times else None
