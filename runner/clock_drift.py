"""Clock drift between a worker's host and the server holding the jobs: the rule, pure.

Workers on several hosts write times into one PostgreSQL or Redis store: when
a job is due, when a lease ends, when a schedule slot fires, when a worker last
beat. Read from a host's clock that is off by D, delayed jobs, retries and
schedules would start D early (ahead) or late (behind), and leases would be
judged by a clock the other hosts do not share. Due times, fire times and TTLs
are therefore written and judged by the server's clock: this host's corrected
by the measured offset (:mod:`runner.store.server_clock`). Heartbeats, and the
leases they extend, stay this host's, with the rule below.

The rule: a worker's clock may differ from the server's by at most
``[worker] max_clock_drift`` seconds; 0 (the default) means a quarter of
``lease_seconds``, 15 s at the default 60. Heartbeats extend a lease every
``heartbeat_interval``, so a lease always has at least ``lease_seconds -
heartbeat_interval`` left; a clock off by that much would make running jobs
look abandoned. ``lease_seconds`` is at least twice ``heartbeat_interval``, so
the limit is at most half of that margin: the warning comes well before. Past
the limit the worker logs a warning and ``health`` fails. A SQLite file has no
clock but its host's: nothing to measure.

What a worker does about any offset it measured, for the leases it extends by
its own clock: it writes lease expiries by the later of its clock and the
server's and judges them by the earlier (:func:`lease_for`,
:func:`judging_time`). A clock off either way then never makes a running job
look abandoned, to itself or to the others; the price is that a dead worker's
jobs come back up to the drift later.
"""

from __future__ import annotations

from runner.config import WorkerSection
from runner.durations import age


def measured_offset(sent: float, server: float, received: float) -> float:
    """This host's clock minus the server's: ``server`` was read between ``sent`` and
    ``received`` (this host's clock), taken as read halfway."""
    return (sent + received) / 2 - server


def drift_limit(worker: WorkerSection) -> float:
    """Seconds of offset from the server's clock beyond which a worker's clock is a problem."""
    return worker.max_clock_drift or worker.lease_seconds / 4


def over_limit(offset: float | None, limit: float) -> bool:
    """True when a measured offset is past the limit; an unmeasured one (None) never is."""
    return offset is not None and abs(offset) > limit


def describe(host: str, offset: float) -> str:
    """'host-b's clock is 2m00s ahead of the server's' (or behind)."""
    side = "ahead of" if offset > 0 else "behind"
    return f"{host}'s clock is {_amount(offset)} {side} the server's"


def signed(offset: float | None) -> str:
    """'+2m00s' ahead, '-250ms' behind, '-' when not measured (the lists of workers)."""
    if offset is None:
        return "-"
    return ("+" if offset >= 0 else "-") + _amount(offset)


def consequence(offset: float) -> str:
    """What an offset does to the jobs (see the module docstring), for the worker's log."""
    shift = _amount(offset)
    on_time = ("delayed jobs, retries and schedules still start on time (due times follow "
               "the server's clock); ")
    if offset > 0:
        return (on_time + "its leases are judged by the server's clock, so running jobs of "
                "other workers are not taken for abandoned")
    return (on_time + f"its leases are {shift} longer, so other workers do not take its "
            "running jobs for abandoned, and if it dies they come back that much later")


def _amount(offset: float) -> str:
    seconds = abs(offset)
    # From a minute on whole seconds show: 119.98 s reads "2m00s", not "1m59s".
    return age(round(seconds) if seconds >= 60 else seconds)


def lease_for(lease_seconds: float, offset: float | None) -> float:
    """The lease to write: long enough by the server's clock too when this one is behind."""
    return lease_seconds + max(0.0, -(offset or 0.0))


def judging_time(now: float, offset: float | None) -> float:
    """The time to judge leases by: the server's when this clock is ahead of it."""
    return now - max(0.0, offset or 0.0)


def server_age(stamp: float, offset: float | None, now: float) -> float:
    """Seconds from ``stamp``, written by a clock ``offset`` ahead of the server's, to
    ``now`` (a heartbeat's age: a worker behind does not look silent for it)."""
    return now - (stamp - (offset or 0.0))


def settled(offset: float | None, error: float) -> float:
    """The offset to correct times by: none within the reading's own error (two clocks
    that agree never read exactly alike, and a shift of a millisecond only makes the
    times written differ from those asked for)."""
    if offset is None or abs(offset) <= error:
        return 0.0
    return offset
