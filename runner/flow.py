"""Flow control arithmetic: rates, token buckets, priority aging and queue shares.

Pure functions of explicit times, shared by the settings (which parse rates)
and by every backend's claim (which applies them inside its transaction), so
that SQLite, PostgreSQL and Redis compute the same answers. The state these
functions read and return (bucket levels, round-robin counters) is kept by the
store; the limits themselves come from settings and task decorators
(:class:`FlowLimits`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)"
                   r"(?:\s+burst\s+(\d+))?\s*$")


#: Seconds of the rate a bucket holds by default (see :func:`parse_rate`).
SLACK = 0.1


@dataclass(frozen=True)
class Rate:
    """At most ``count`` starts per ``per`` seconds, ``burst`` of them back to back."""

    count: float
    per: float
    burst: int = 1

    @property
    def per_second(self) -> float:
        return self.count / self.per

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h", 86400.0: "d"}.get(self.per, f"{self.per:g}s")
        text = f"{self.count:g}/{unit}"
        return f"{text} burst {self.burst}"


def parse_rate(text: str, burst: int = 0) -> Rate:
    """``"100/m"``, ``"5/s"``, ``"1000/h"``, ``"10/30s"``, optionally ``" burst 20"``.

    ``burst`` (when not 0) is the burst the text leaves out: both, different, are
    refused rather than one of them silently ignored. Without either, the bucket
    holds one start, or what the rate refills in :data:`SLACK` seconds when that
    is more: a worker that wakes for its token a little late (a busy machine, the
    claim itself) then starts the jobs it owes instead of losing them, so the
    measured rate holds at high rates too.

    Raises:
        ValueError: the text is not a rate, a number is not positive, or the text's
            burst is not ``burst``.
    """
    match = _RATE.match(text.lower())
    if match is None or match.group(3) not in _UNITS:
        raise ValueError(f"{text!r} is not a rate: write COUNT/UNIT with UNIT s, m, h or d, "
                         "e.g. \"100/m\", \"5/s\" or \"100/m burst 20\"")
    count = float(match.group(1))
    per = float(match.group(2) or 1) * _UNITS[match.group(3)]
    written = int(match.group(4)) if match.group(4) is not None else None
    if burst and written is not None and burst != written:
        raise ValueError(f"{text!r} has burst {written} but burst = {burst}: give the burst "
                         "once, in the rate or as burst")
    size = burst or written or max(1, math.ceil(count / per * SLACK))
    if count <= 0 or per <= 0 or written == 0:
        raise ValueError(f"{text!r}: the count, the period and the burst must be positive")
    return Rate(count, per, size)


# -- token bucket ----------------------------------------------------------------------


def refill(tokens: float | None, updated_at: float, now: float, rate: Rate) -> float:
    """Tokens in a bucket at ``now``; ``tokens`` None is a bucket never used (full).

    A clock that went backwards adds nothing rather than taking tokens away.
    """
    if tokens is None:
        return float(rate.burst)
    return min(float(rate.burst), tokens + max(0.0, now - updated_at) * rate.per_second)


#: Timestamps near today's carry about 2.4e-7 s of rounding: a token due within this
#: many seconds counts as there, or a token due "now" would be missed by rounding.
_ROUNDING = 1e-6


def has_token(tokens: float, rate: Rate) -> bool:
    """Whether a bucket holding ``tokens`` may start one more job."""
    return tokens >= 1 - rate.per_second * _ROUNDING


def next_token_at(tokens: float, now: float, rate: Rate, need: int = 1) -> float:
    """When a bucket holding ``tokens`` at ``now`` holds ``need`` whole tokens (at most
    its burst): a worker that wants several jobs sleeps until it can take them in one
    claim, rather than claiming one job per token."""
    need = max(1, min(need, rate.burst))
    if has_token(tokens - need + 1, rate):
        return now
    return now + (need - tokens) / rate.per_second


# -- priorities ------------------------------------------------------------------------


def effective_priority(priority: int, run_at: float, now: float, aging: float) -> int:
    """A waiting job's priority plus one level per ``aging`` seconds it has been due.

    ``aging`` 0 turns aging off. A job not yet due gains nothing.
    """
    if aging <= 0 or now <= run_at:
        return priority
    return priority + math.floor((now - run_at) / aging)


def claim_order(priority: int, run_at: float, now: float, aging: float) -> tuple[int, float]:
    """Sort key of a waiting job: highest effective priority first, then longest due."""
    return (-effective_priority(priority, run_at, now, aging), run_at)


# -- queue shares ----------------------------------------------------------------------


def weighted_pick(current: Mapping[str, float], weights: Mapping[str, int],
                  eligible: Sequence[str]) -> tuple[str, dict[str, float]]:
    """Smooth weighted round robin: the queue to take from next, and the new counters.

    Every eligible queue gains its weight; the one with the most (ties by name)
    is picked and pays back the eligible weights' total. Over any run of picks
    with the same eligible queues, each gets its weight's share, interleaved.
    Queues with nothing to give keep their counter.

    Raises:
        ValueError: ``eligible`` is empty.
    """
    counters = dict(current)
    return weighted_step(counters, weights, eligible), counters


def weighted_next(counters: Mapping[str, float], weights: Mapping[str, int],
                  eligible: Sequence[str]) -> str:
    """The queue :func:`weighted_pick` would pick, without picking it.

    Raises:
        ValueError: ``eligible`` is empty.
    """
    if not eligible:
        raise ValueError("no eligible queue to pick from")
    return min(eligible, key=lambda name: (-(counters.get(name, 0.0) + weights.get(name, 1)),
                                           name))


def weighted_step(counters: dict[str, float], weights: Mapping[str, int],
                  eligible: Sequence[str]) -> str:
    """:func:`weighted_pick` on ``counters`` in place (a claim picks many times)."""
    return weighted_run(counters, weights, eligible, 1)


def weighted_run(counters: dict[str, float], weights: Mapping[str, int],
                 eligible: Sequence[str], picks: int) -> str:
    """``picks`` picks of :func:`weighted_step` that all go to one queue, in place.

    The queue is the one :func:`weighted_next` names; every eligible queue gains
    its weight ``picks`` times and the chosen one pays the total back as often.
    Over consecutive runs each queue still gets its weight's share of the picks
    (counted in jobs, to within one run), in runs instead of interleaved: a claim
    taken ahead for short jobs takes its jobs from one queue, so its writes land
    in one place of the claim and history indexes rather than one per queue.
    """
    chosen = weighted_next(counters, weights, eligible)
    total = 0
    for name in eligible:
        weight = weights.get(name, 1)
        counters[name] = counters.get(name, 0.0) + weight * picks
        total += weight
    counters[chosen] -= total * picks
    return chosen


def unequal_weights(queues: Iterable[str], weights: Mapping[str, int]) -> bool:
    """Whether ``queues`` drain at different paces: two of them have unequal weights
    (a queue not in ``weights`` has weight 1).

    Jobs of such queues are written queue by queue when many are written at once
    (``enqueue_many``'s batches, SQLite's intake), so that each queue's jobs are
    neighbouring rows: a claim of one queue's jobs then writes a few pages, not a
    page for every few jobs (pages the other queues' claims write again later).
    """
    return len({weights.get(q, 1) for q in queues}) > 1


# -- the limits a claim applies --------------------------------------------------------


@dataclass(frozen=True)
class FlowLimits:
    """Every limit a worker applies when it claims, from settings and task decorators.

    Concurrency counts the jobs ``executing`` in the whole database; rates are
    token buckets kept in the database; both are enforced inside the claim
    transaction, so all workers on all hosts share them.
    """

    aging: float = 0.0
    """Seconds of waiting per level of priority gained (0: no aging)."""
    weights: Mapping[str, int] = field(default_factory=dict)
    """Queue -> weight; empty: no sharing, jobs are taken by priority across queues."""
    queue_concurrency: Mapping[str, int] = field(default_factory=dict)
    queue_rates: Mapping[str, Rate] = field(default_factory=dict)
    task_concurrency: Mapping[str, int] = field(default_factory=dict)
    key_concurrency: Mapping[str, int] = field(default_factory=dict)
    """Task -> most jobs running at once per concurrency key."""
    task_rates: Mapping[str, Rate] = field(default_factory=dict)

    @property
    def limited(self) -> bool:
        """Any concurrency or rate limit (counts or buckets must be read at claim)."""
        return bool(self.queue_concurrency or self.queue_rates or self.task_concurrency
                    or self.key_concurrency or self.task_rates)

    @property
    def plain(self) -> bool:
        """Nothing but plain priority order: the claim needs none of this."""
        return not (self.limited or self.weights or self.aging > 0)


def full_label(kind: str, name: str) -> str:
    """How a claim names a queue's or a task's concurrency limit at its cap
    (``kind`` "queue" or "task")."""
    return f"{kind}:{name}"


def bucket_key(kind: str, name: str) -> str:
    """The stored name of a rate bucket (``kind`` "queue" or "task")."""
    return f"rate:{kind}:{name}"


def turn_key(queue: str) -> str:
    """The stored name of a queue's round-robin counter."""
    return f"turn:{queue}"
