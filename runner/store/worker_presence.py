"""Worker presence in the storage seam: registration, heartbeats, leases, orphans.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from runner.store.job_rows import Ack, Failed, FailureInfo
from runner.store.rows import Beat, Recovery


class AttemptLog(Protocol):
    """Which attempts a worker process has started, kept where its death cannot erase it.

    Only attempts noted here are charged a crash when the process dies (jobs
    claimed ahead and never started go back uncharged).
    """

    def started(self, job_id: str, attempt: int) -> None:
        """Note, before it runs, that ``attempt`` of ``job_id`` starts."""
        ...

    def settled(self, job_ids: Sequence[str]) -> None:
        """The outcomes of these jobs are committed: forget them."""
        ...

    def keep_outcomes(self, acks: Sequence[Ack], failures: Sequence[Failed] = ()) -> bool:
        """Keep outcomes a stopping worker could not write where the recovery of its jobs
        commits them instead of charging a crash; False when it cannot."""
        ...

    def close(self, *, remove: bool = True) -> None:
        """Stop noting; a clean stop forgets everything."""
        ...


class WorkersStore(Protocol):
    """Worker processes: alive, stopped or gone, the jobs they hold and named leases."""

    def server_time(self) -> float | None:
        """The clock of the server that holds the data, read now, in seconds since the
        epoch; None when the data has no clock but this host's (a SQLite file).

        Workers on several hosts write their own clocks' times into one store; a
        worker compares its clock with this one to find out how far off it is.
        """
        ...

    def attempt_log(self, owner: str) -> AttemptLog:
        """Where worker ``owner`` notes the attempts it starts (see :class:`AttemptLog`)."""
        ...

    def register(self, owner: str, *, concurrency: int, queues: tuple[str, ...],
                 clock_offset: float | None = None, now: float | None = None) -> None:
        """Record a worker process as running (``clock_offset``: see :meth:`heartbeat`)."""
        ...

    def heartbeat(self, owner: str, job_ids: list[str], *, lease_seconds: float,
                  rss_bytes: int | None = None, cpu_percent: float | None = None,
                  processed: int | None = None, status: str | None = None,
                  running: int | None = None, clock_offset: float | None = None,
                  now: float | None = None) -> Beat:
        """Say this worker is alive and extend the leases of the jobs it runs.

        A lease is extended to ``now + lease_seconds``, never shortened: a clock that
        jumped back since its offset was measured does not cut short the lease it
        wrote before. ``clock_offset``: seconds the worker's clock is ahead of
        :meth:`server_time` (negative: behind), as it last measured; None keeps the
        one recorded.

        Returns which of ``job_ids`` the worker still holds and the server's clock,
        both read in the heartbeat's own round trip: a worker needs no other read
        to find a lost lease or to measure its clock at every heartbeat.
        """
        ...

    def mark_stopped(self, owner: str, now: float | None = None) -> None:
        """Record a clean exit of a worker process."""
        ...

    def recover_orphans(self, *, crash_limit: int, me: str | None = None,
                        now: float | None = None, grace: float = 0.0) -> Recovery:
        """Requeue (or bury) jobs whose worker is gone.

        A lease counts as expired ``grace`` seconds after its expiry: the time the
        caller's own heartbeats were held back lately (:mod:`runner.worker.write_gaps`),
        during which no holder could renew its lease either.
        """
        ...

    def prune_workers(self, *, older_than: float, now: float | None = None) -> int:
        """Forget worker rows that stopped or went silent long ago."""
        ...

    def charge_stuck(self, job_id: str, attempt: int, owner: str, failure: FailureInfo, *,
                     run_at: float | None = None, data: bytes | None = None,
                     reason: str | None = None, now: float | None = None) -> str | None:
        """An attempt stuck past its timeout is a failed attempt (``failure``, of kind
        ``timeout``), never a crash: ``retrying`` at ``run_at`` (``data`` the task for its
        next attempt) when its task retries it, else ``dead``. One someone asked to cancel
        is cancelled instead (its worker could not stop it, and retried it would run
        again), the reason naming who asked.

        Returns the job's new state (``retrying``, ``dead`` or ``cancelled``), or None
        when that attempt was no longer running under ``owner``.
        """
        ...

    # -- named leases --------------------------------------------------------------------

    def take_lease(self, name: str, owner: str, ttl: float, *,
                   now: float | None = None) -> bool:
        """Take lease ``name`` if free or expired, renew it if ours; True when we hold it."""
        ...

    def release_lease(self, name: str, owner: str) -> None:
        """Give lease ``name`` up (a clean stop), so another holder can take it at once."""
        ...
