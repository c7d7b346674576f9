"""How long a worker's heartbeats were held back, and the grace its recovery gives leases."""

from __future__ import annotations

from runner.worker.write_gaps import WriteGaps

INTERVAL, LEASE = 1.0, 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def beats(gaps: WriteGaps, clock: Clock, *seconds: float) -> list[float | None]:
    """Heartbeats getting through after each of ``seconds``; the stall each ended."""
    found = []
    for step in seconds:
        clock.now += step
        found.append(gaps.written(LEASE))
    return found


def test_heartbeats_on_time_give_no_grace():
    clock = Clock()
    gaps = WriteGaps(INTERVAL, clock=clock)
    assert beats(gaps, clock, 1.0, 1.2, 2.0) == [None, None, None]
    assert gaps.grace(LEASE) == 0


def test_a_heartbeat_held_back_gives_its_gap_as_grace_for_one_lease_after():
    clock = Clock()
    gaps = WriteGaps(INTERVAL, clock=clock)
    # A lock held every heartbeat back for 25 s
    assert beats(gaps, clock, 1.0, 25.0) == [None, 25.0]
    assert gaps.grace(LEASE) == 25.0
    beats(gaps, clock, *[1.0] * 9)
    assert gaps.grace(LEASE) == 25.0
    # A whole lease after it ended, any lease not renewed since was not held back by it
    clock.now += 1.0
    assert gaps.grace(LEASE) == 0


def test_heartbeats_that_failed_count_from_the_last_that_got_through():
    clock = Clock()
    gaps = WriteGaps(INTERVAL, clock=clock)
    clock.now += 30.0  # the database away: each pass failed, none got through
    assert gaps.written(LEASE) == 30.0


def test_stalls_within_a_lease_add_up():
    clock = Clock()
    gaps = WriteGaps(INTERVAL, clock=clock)
    beats(gaps, clock, 5.0, 1.0, 4.0)
    assert gaps.grace(LEASE) == 9.0
