"""What the flow limits still allow in one claim: the bookkeeping both SQL backends share.

A claim under flow control (``sqlite/limits.py``, ``postgres/limits.py``) reads
the jobs running per queue, task and key and the stored token buckets in its
own SQL, then counts here: which queues, tasks and keys are still open, what a
job taken spends, which limits end at their cap, what is written back and when
the next token of a blocking bucket is due. The math itself (refill, tokens,
claim order) is :mod:`runner.flow`'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from runner.store.parking import TASK_GROUP, key_group


@dataclass(slots=True)
class Candidate:
    """A due job a claim may take."""

    id: int | str
    """How the claim finds the row again: SQLite's rowid (no id index), else the job's id."""
    task: str
    key: str | None
    queue: str
    order: tuple[int, float] = (0, 0.0)
    """Sort key where levels of priority are merged (:func:`runner.flow.claim_order`);
    a read already in claim order leaves it unset."""


@dataclass(frozen=True)
class Choice:
    """What the limits let a claim take."""

    ids: list[int | str]
    """Jobs to claim now (as :attr:`Candidate.id`), best first."""
    next_due: float | None
    """With nothing to claim: a later ``run_at``, or the next token of a bucket."""
    full: frozenset[str]
    """Concurrency limits at their cap once these start (:func:`runner.flow.full_label`)."""
    parking: list[tuple[int | str, str, str]] = field(default_factory=list)
    """Jobs passed over to park once these are claimed (:attr:`Budget.parking`)."""


def bucket_rates(limits: FlowLimits, waiting: Sequence[str]) -> dict[str, Rate]:
    """The rate of each bucket a claim spends from: the rated queues among ``waiting``
    and every rated task."""
    rates: dict[str, Rate] = {bucket_key("queue", q): r for q, r in limits.queue_rates.items()
                              if q in waiting}
    rates.update((bucket_key("task", t), r) for t, r in limits.task_rates.items())
    return rates


@dataclass
class Budget:
    """What the limits still allow in this claim."""

    limits: FlowLimits
    running_queue: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    running_task: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    running_key: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    tokens: dict[str, float] = field(default_factory=dict)
    spent: set[str] = field(default_factory=set)
    turns: dict[str, float] = field(default_factory=dict)
    """Each waiting queue's round-robin counter (with shares)."""
    stored_turns: dict[str, float] = field(default_factory=dict)
    """The counters as read: only those a claim changed are written back."""
    paused_tasks: frozenset[str] = frozenset()
    """Tasks paused by hand (runner_pause): never claimed."""
    parking: list[tuple[int | str, str, str]] = field(default_factory=list)
    """Jobs passed over that a concurrency limit holds back, to park: (id, task, group)
    (:mod:`runner.store.parking`)."""
    park: Callable[[list[tuple[int | str, str, str]]], None] | None = None
    """Parks (and clears) :attr:`parking` at once, when the backend parks in the claim's
    reads (the caller's transition; None: the caller parks after claiming)."""

    def count_running(self, queue: str, task: str, key: str | None, n: int) -> None:
        """``n`` jobs executing in ``queue``, of ``task`` under concurrency ``key``."""
        self.running_queue[queue] += n
        self.running_task[task] += n
        if key is not None:
            self.running_key[(task, key)] += n

    def fill(self, rates: Mapping[str, Rate], stored: Mapping[str, tuple[float, float]],
             waiting: Sequence[str], now: float) -> None:
        """The buckets refilled up to ``now`` and, with shares, each waiting queue's turn,
        from the ``runner_flow`` rows read (key -> (value, updated_at))."""
        for name, rate in rates.items():
            level, updated = stored.get(name, (None, now))
            self.tokens[name] = refill(level, updated, now, rate)
        if self.limits.weights:
            self.turns = {q: stored.get(turn_key(q), (0.0, now))[0] for q in waiting}
            self.stored_turns = dict(self.turns)

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

    def allows(self, c: Candidate) -> bool:
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

    def held(self) -> tuple[list[str], list[tuple[str, str]]]:
        """The tasks, and (task, key) pairs, that may start nothing more in this claim
        for a reason no finishing job ends (paused, out of tokens): a claim leaves them
        out in SQL. Those a concurrency limit holds are read, and parked
        (:meth:`park_group`), so later claims do not read them at all."""
        limits = self.limits
        tasks = sorted({t for t in limits.task_rates
                        if not self.task_open(t) and self.park_group_of(t, None) is None}
                       | self.paused_tasks)
        return tasks, sorted(self.keys_held())

    def keys_held(self) -> set[tuple[str, str]]:
        """The (task, key) pairs to leave out in SQL: none here (a key's limit parks)."""
        return set()

    def park_group_of(self, task: str, key: str | None) -> str | None:
        """The group whose concurrency limit is at its cap and holds back a job of
        ``task`` and ``key`` (:mod:`runner.store.parking`), or None."""
        cap = self.limits.task_concurrency.get(task, 0)
        if cap and self.running_task[task] >= cap:
            return TASK_GROUP
        cap = self.limits.key_concurrency.get(task, 0)
        if cap and key is not None and self.key_counted(task, key) \
                and self.running_key[(task, key)] >= cap:
            return key_group(key)
        return None

    def key_counted(self, task: str, key: str) -> bool:
        """Whether the running jobs of ``key`` are known to this claim."""
        return True

    def park_group(self, c: Candidate) -> str | None:
        """:meth:`park_group_of` the candidate's task and key."""
        return self.park_group_of(c.task, c.key)

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

    def take_all(self, chosen: Iterable[Candidate]) -> None:
        """:meth:`take` for each of ``chosen``, counted by queue and task first."""
        queues: dict[str, int] = defaultdict(int)
        tasks: dict[str, int] = defaultdict(int)
        keys: list[tuple[str, str]] = []
        for c in chosen:
            queues[c.queue] += 1
            tasks[c.task] += 1
            if c.key is not None:
                keys.append((c.task, c.key))
        self.take_counts(queues, tasks, keys)

    def take_counts(self, queues: Mapping[str, int], tasks: Mapping[str, int],
                    keys: Iterable[tuple[str, str]] = ()) -> None:
        """:meth:`take_all` from the jobs taken counted by queue and by task, and the
        (task, key) of each that has a key."""
        for pair in keys:
            self.running_key[pair] += 1
        for kind, counts, running in (("queue", queues, self.running_queue),
                                      ("task", tasks, self.running_task)):
            for name, n in counts.items():
                running[name] += n
                bucket = bucket_key(kind, name)
                if bucket in self.tokens:
                    self.tokens[bucket] -= n
                    self.spent.add(bucket)

    def take(self, c: Candidate) -> None:
        self.running_queue[c.queue] += 1
        self.running_task[c.task] += 1
        if c.key is not None:
            self.running_key[(c.task, c.key)] += 1
        for name in (bucket_key("queue", c.queue), bucket_key("task", c.task)):
            if name in self.tokens:
                self.tokens[name] -= 1
                self.spent.add(name)

    def changed_state(self) -> list[tuple[str, float]]:
        """The ``runner_flow`` rows a claim that took jobs writes back: the buckets it
        spent from and, with shares, the turns it moved (a queue with nothing due takes no
        turn: rewriting its counter as read would cost a write per waiting queue)."""
        state = [(name, self.tokens[name]) for name in sorted(self.spent)]
        if self.limits.weights:
            state += [(turn_key(q), value) for q, value in sorted(self.turns.items())
                      if self.stored_turns.get(q) != value]
        return state

    def token_times(self, now: float, want: int) -> list[float]:
        """When each bucket out of tokens has ``want`` again."""
        rates = {**{bucket_key("queue", q): r for q, r in self.limits.queue_rates.items()},
                 **{bucket_key("task", t): r for t, r in self.limits.task_rates.items()}}
        return [next_token_at(tokens, now, rates[name], want)
                for name, tokens in self.tokens.items() if not has_token(tokens, rates[name])]


class Stream:
    """Due jobs of some queues, best first, read from the database as far as needed.

    A backend's subclass reads: :meth:`_fetch` puts the next rows in :attr:`rows`
    (best first, none taken before) and says in :attr:`complete` whether more
    could follow; this class walks them against the :class:`Budget`.
    """

    def __init__(self, queues: Sequence[str], now: float, size: int, aging: float,
                 crashes: str) -> None:
        self.queues = list(queues)
        self.now, self.aging, self.crashes = now, aging, crashes
        self.size = max(1, size)
        self.rows: list[Candidate] = []
        self.position = 0
        self.taken: set[str] = set()
        self.complete = not self.queues  # every due job these queues may start is read

    def _fetch(self, conn: object, budget: Budget) -> None:
        raise NotImplementedError

    def best_of_level(self, level: int, oldest: object) -> tuple[int, float]:
        """The claim order of a level of priority's oldest job: no job of the level comes
        before it (a hand-edited ``run_at`` that is not a number is never due: last)."""
        if not isinstance(oldest, (int, float)):
            return (-level, float("inf"))
        return claim_order(level, oldest, self.now, self.aging)

    def take(self, c: Candidate, budget: Budget) -> None:
        self.position += 1
        self.taken.add(c.id)
        budget.take(c)

    def next_allowed(self, conn: object, budget: Budget) -> Candidate | None:
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
            if self.crashes == "= 0":  # a suspect is claimed alone, and seldom held
                group = budget.park_group(c)
                if group is not None:
                    budget.parking.append((c.id, c.task, group))
            self.position += 1
