"""The claim of queue shares when no limit can bind: each queue's turns worked out first.

With weights and a budget no limit can bind in this claim
(:meth:`runner.store.claim_budget.Budget.unbound`), the smooth weighted round
robin of :func:`runner.store.sqlite.limits._choose_shared` picks the queues
without looking at the jobs: only how many due jobs each queue still has can
change the picks (an exhausted queue leaves the round). So the picks are
worked out from the stored counters alone (:func:`plan`, cached: a worker's
counters cycle through a few states), and one ``UPDATE`` takes each queue's
share of its best jobs, instead of reading the jobs, picking them one by one
in Python and claiming them by id. The claim holds the write lock and every
idle thread of the worker waits on it, so this is time on the drain's
critical path.

A queue with fewer due jobs than its share gives all it has, and the plan is
worked out again knowing so: the other queues' shares can only grow, and the
next ``UPDATE`` takes what they are still owed. The jobs taken are exactly
those of the one-by-one claim. No savepoint guards the ``UPDATE``: under one,
SQLite copies every page the claim writes into a statement journal (a
temporary file past 64 KiB), which cost the drain more than the claim's own
work. Were a plan ever to give a queue fewer picks than the jobs it already
gave, those jobs are claimed all the same, after the planned ones: no limit
binds, so any due job may start, and the shares are off by those jobs only.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from operator import itemgetter

from runner.flow import weighted_next, weighted_run
from runner.store.claim_budget import Budget
from runner.store.sqlite.backlog import due_level_select, due_top_select, lower_levels

#: The columns a claim returns, as the one-statement claim of
#: :func:`runner.store.sqlite.transitions.claim` does; with a limit per key, the key
#: last. No more: Python's sqlite3 lets other threads run around every column it
#: reads, and the worker's threads wait on this claim.
RETURNING = "id, data, attempt, priority, run_at, task, queue"

#: Claims the rows a ``SELECT rowid`` picks (SQL, parameters, columns returned) and
#: returns them: :func:`runner.store.sqlite.transitions.claim_rowids` under a lease.
Take = Callable[[str, Sequence[object], str], list[tuple]]


@functools.lru_cache(maxsize=512)
def plan(names: tuple[str, ...], weights: tuple[float, ...], counters: tuple[float, ...],
         caps: tuple[int | None, ...], want: int,
         runs: bool = False) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The queues (by index) of up to ``want`` picks, in order, and the counters after.

    The picks of :func:`_choose_shared` (smooth weighted round robin of
    :mod:`runner.flow`), worked out before any job is read: a queue whose cap
    (due jobs it has, None for enough) is reached leaves the round when its turn
    comes. With ``runs`` (a claim taken ahead), each turn takes as many picks as the
    queue can give (:func:`runner.flow.weighted_run`): the claim's jobs come from one
    queue, and from the next only when that one runs short.
    """
    counter = dict(zip(names, counters, strict=True))
    weight = dict(zip(names, weights, strict=True))
    index = {name: i for i, name in enumerate(names)}
    taken = [0] * len(names)
    # A queue known to have no due job takes no turn (see limits._choose_shared).
    ready = [name for name, cap in zip(names, caps, strict=True) if cap != 0]
    picks: list[int] = []
    while len(picks) < want and ready:
        best = index[weighted_next(counter, weight, ready)]
        cap = caps[best]
        if cap is not None and taken[best] >= cap:
            ready.remove(names[best])
            continue
        room = 1
        if runs:
            room = want - len(picks) if cap is None else min(want - len(picks),
                                                              cap - taken[best])
        weighted_run(counter, weight, ready, room)
        picks.extend([best] * room)
        taken[best] += room
    return tuple(picks), tuple(counter[name] for name in names)


def take_shares(conn: sqlite3.Connection, names: Sequence[str], weights: Sequence[float],
                budget: Budget, want: int, now: float, crashes: str, held: tuple[str, list],
                take: Take, runs: bool = False) -> list[tuple]:
    """Claim up to ``want`` jobs of ``names`` by their shares (through ``take``), best
    first; the claimed rows, counted in ``budget``."""
    counters = tuple(budget.turns.get(q, 0.0) for q in names)
    keyed = bool(budget.limits.key_concurrency)
    weights = tuple(weights)
    caps: list[int | None] = [None] * len(names)
    got: list[list[tuple]] = [[] for _ in names]
    # Each round but the last finds a queue short, so the rounds end.
    for _ in range(len(names) + 1):
        picks, after = plan(tuple(names), weights, counters, tuple(caps), want, runs)
        owed = [max(0, picks.count(i) - len(got[i])) for i in range(len(names))]
        if not any(owed):
            break
        found = _claim(conn, names, owed, now, crashes, held, take, keyed)
        for i, rows in enumerate(found):
            if len(rows) < owed[i]:
                caps[i] = len(got[i]) + len(rows)
            # Best first; ties stay as updated (by rowid, as the claim index has them).
            rows.sort(key=itemgetter(4))  # then by priority, stable: best first
            rows.sort(key=itemgetter(3), reverse=True)
            got[i] += rows
    return _finish(names, got, picks, after, budget, keyed)


def _claim(conn: sqlite3.Connection, names: Sequence[str], owed: Sequence[int], now: float,
           crashes: str, held: tuple[str, list], take: Take, keyed: bool) -> list[list[tuple]]:
    """Claim the ``owed`` best due jobs of each queue, the highest levels of priority of
    all in one statement (that reads and writes them: no row comes back to Python twice),
    then the lower levels of a queue that gave fewer, a level at a time (jobs due later at
    a higher priority are not read past: :mod:`runner.store.sqlite.backlog`); rows per
    queue (with the concurrency key last when ``keyed``)."""
    held_sql, held_params = held
    condition = f" AND crashes {crashes}{held_sql}"
    returning = RETURNING + (", concurrency_key" if keyed else "")
    wanted = {q: n for q, n in zip(names, owed, strict=True) if n > 0}
    by_queue: dict[str, list[tuple]] = {q: [] for q in names}
    if wanted:
        for row in take(*due_top_select(wanted, now, condition, held_params), returning):
            by_queue[row[6]].append(row)
    for queue, want in wanted.items():
        rows = by_queue[queue]
        if len(rows) < want:
            for level in lower_levels(conn, queue, rows[0][3] if rows else None):
                rows += take(due_level_select(condition),
                             (queue, level, now, *held_params, want - len(rows)), returning)
                if len(rows) >= want:
                    break
    return [by_queue[q] for q in names]


def _finish(names: Sequence[str], got: list[list[tuple]], picks: Sequence[int],
            after: Sequence[float], budget: Budget, keyed: bool) -> list[tuple]:
    """The rows in pick order, counted in the budget, and the counters stored as turns."""
    rows = [got[i][n] for i, n in _positions(picks) if n < len(got[i])]
    if len(rows) < sum(map(len, got)):  # never expected (see the module docstring)
        planned = Counter(picks)
        rows += [row for i, taken in enumerate(got) for row in taken[planned[i]:]]
    count_taken(budget, rows, keyed)
    budget.turns.update(zip(names, after, strict=True))
    return rows


def count_taken(budget: Budget, rows: Sequence[tuple], keyed: bool) -> None:
    """Count claimed rows (:data:`RETURNING`, with the concurrency key last when
    ``keyed``) in ``budget``, by queue, task and key."""
    budget.take_counts(Counter(r[6] for r in rows), Counter(r[5] for r in rows),
                       [(r[5], r[7]) for r in rows if r[7] is not None] if keyed else ())


@functools.lru_cache(maxsize=512)
def _positions(picks: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """(queue, its n-th pick) of each pick in order."""
    seen = [0] * (max(picks, default=-1) + 1)
    out = []
    for i in picks:
        out.append((i, seen[i]))
        seen[i] += 1
    return tuple(out)
