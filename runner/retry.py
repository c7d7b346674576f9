"""Retry policy: which errors are retried, and how long to wait before the next attempt.

Pure functions; the random source is a parameter so tests can pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from runner.errors import Fatal


@dataclass(frozen=True)
class RetryPolicy:
    """How one task is retried."""

    retry_limit: int = 3
    """Retries after the first attempt."""
    retry_delay: float = 1.0
    """Seconds before the first retry."""
    backoff: float = 2.0
    """Multiplier per retry: delays are d, d*b, d*b^2, ..."""
    max_retry_delay: float = 3600.0
    """Cap on any one delay."""
    jitter: float = 0.1
    """Random extra, as a fraction of the delay (0.1 = up to 10% more)."""
    retry_on: tuple[type[BaseException], ...] = ()
    """When set, only these exception classes are retried."""
    no_retry_on: tuple[type[BaseException], ...] = ()
    """These exception classes fail the job at once."""

    def should_retry(self, exc: BaseException) -> bool:
        """True when ``exc`` is an error category this task retries."""
        if isinstance(exc, Fatal):
            return False
        if self.no_retry_on and isinstance(exc, self.no_retry_on):
            return False
        if self.retry_on:
            return isinstance(exc, self.retry_on)
        return True


def backoff_delay(policy: RetryPolicy, retry_number: int,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``retry_number`` (1 for the first retry).

    ``retry_delay * backoff**(n-1)``, capped at ``max_retry_delay``, plus up to
    ``jitter`` of itself at random, and the cap holds after the jitter too.
    """
    if retry_number < 1:
        raise ValueError("retry_number starts at 1")
    try:
        base = policy.retry_delay * policy.backoff ** (retry_number - 1)
    except OverflowError:  # past what a float holds: far past any cap
        base = policy.max_retry_delay
    base = min(base, policy.max_retry_delay)
    delay = base * (1.0 + policy.jitter * rand())
    return min(delay, policy.max_retry_delay)
