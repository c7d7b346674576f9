"""How the CLI and the dashboard write which attempt a job is on, against its retry limit."""

from __future__ import annotations

import pytest

from runner.store.rows import attempt_text


@pytest.mark.parametrize("attempt, allowed, crashes, requested, full, compact", [
    (2, 3, 0, 0, "2 of 3", "2/3"),
    (2, 1, 1, 0, "2 (1 of 1 allowed +1 crash)", "1/1 +1 crash"),
    (3, 1, 2, 0, "3 (1 of 1 allowed +2 crashes)", "1/1 +2 crashes"),
    # runner.Retry asks for an attempt the limit does not count
    (4, 2, 0, 2, "4 (2 of 2 allowed +2 requested)", "2/2 +2 requested"),
    (1, 1, 0, 1, "1 (0 of 1 allowed +1 requested)", "0/1 +1 requested"),
    (5, 2, 1, 2, "5 (2 of 2 allowed +1 crash +2 requested)", "2/2 +1 crash +2 requested"),
])
def test_attempts_the_limit_did_not_count_are_shown_apart(attempt, allowed, crashes, requested,
                                                          full, compact):
    assert attempt_text(attempt, allowed, crashes, requested=requested) == full
    assert attempt_text(attempt, allowed, crashes, requested=requested, compact=True) == compact
