"""What orphan recovery decides, the same for every backend.

The lifeline (``recover_orphans``) of each backend reads who holds running
jobs and which workers are registered; here, with no SQL or driver: which of
those owners are dead or live processes of this host, which idle workers are
gone, whether anything needs a write at all, and the fate of each orphaned
attempt (cancelled by hand, not running in its worker, or charged a crash).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from runner.store.owners import parse_worker_id, pid_alive, worker_gone
from runner.store.rows import Recovery


@dataclass(frozen=True)
class Orphan:
    """A job left ``executing`` by a worker that is gone (or whose lease expired)."""

    id: str
    owner: str | None
    attempt: int
    crashes: int
    started_at: float | None


#: The reason of a job requeued uncharged because its dead worker had not started it.
DIED_BEFORE_STARTING = "claimed by a worker that died before starting it; requeued"
#: The reason of a job requeued uncharged because its worker, alive, was not running it:
#: claimed ahead and not started when the worker stalled, or finished in a file since
#: replaced by a backup that still shows it running.
NOT_RUNNING = "its worker was not running it when its lease expired; requeued"


def crash_reason(error_type: str, crashes: int, *, dead: bool) -> str:
    """The reason a crash charged to a job gives: requeued, or ``dead`` at its crash
    limit after ``crashes`` (the Redis backend's Lua script words them the same)."""
    what = "worker died" if error_type == "WorkerDied" else "stuck"
    times = "once" if crashes == 1 else f"{crashes} times"
    return f"{what} ({times} while running it)" if dead else f"{what}; requeued"


def dead_here(owners: Iterable[str | None], me: str | None, host: str) -> list[str]:
    """The owners that are processes of this host that no longer exist (or this very
    process under another id): their jobs come back at once, with no lease wait."""
    found = []
    for owner in owners:
        if owner is None or owner == me:
            continue
        owner_host, pid = parse_worker_id(owner)
        if owner_host == host and pid is not None and (pid == os.getpid() or not pid_alive(pid)):
            found.append(owner)
    return found


def alive_here(owners: Iterable[str | None], me: str | None, host: str,
               dead: Collection[str]) -> set[str]:
    """The owners known to be running now: this process (``me``) and the other processes
    of this host not in ``dead`` (:func:`dead_here`, which looked at each one already).
    Their attempt logs say which attempts they really run."""
    found = {me} if me else set()
    for owner in owners:
        if owner is None or owner == me or owner in dead:
            continue
        owner_host, pid = parse_worker_id(owner)
        if owner_host == host and pid is not None:
            found.add(owner)
    return found


def idle_dead(running: Iterable[str], me: str | None, dead: Collection[str],
              host: str) -> list[str]:
    """Workers registered as running, holding no job, that are gone: a worker killed
    while idle holds no job, but its row must not stay 'running'."""
    return [w for w in running if w != me and w not in dead and worker_gone(w, host)]


def nothing_to_recover(dead: Collection[str], idle: Collection[str],
                       expiries: Iterable[float | None], now: float) -> bool:
    """No dead owner, no gone worker and no expired lease: no write transaction."""
    return not dead and not idle and not any(
        expires is not None and expires < now for expires in expiries)


def cancelled_while_running(by: str) -> str:
    """The reason of an attempt stopped at ``by``'s request, worded as the worker words its
    own (:meth:`runner.execution.Interrupt.message`)."""
    return f"cancelled by {by} while running"


def unstarted_reason(owner: str | None, me: str | None, alive: Collection[str]) -> str:
    """The reason of a job requeued uncharged: its worker died before starting the
    attempt, or (``me`` or in ``alive``) is running but not running it."""
    if owner is not None and (owner == me or owner in alive):
        return NOT_RUNNING
    return DIED_BEFORE_STARTING


def settle_orphans(found: Iterable[Orphan], me: str | None, *,
                   cancelled_by: Callable[[Orphan], str | None],
                   started: Callable[[str | None], Collection[tuple[str, int]] | None],
                   cancel: Callable[[Orphan, str], None],
                   requeue_unstarted: Callable[[Orphan, str], None],
                   charge: Callable[[Orphan, str], bool],
                   alive: Collection[str]) -> Recovery:
    """The fate of each orphaned attempt, carried out by the backend's callbacks.

    Cancelled by hand (``cancelled_by`` names who): it does not run again. Not
    running in its worker (``started(owner)``, the attempts the owner began and
    has not settled, None when unknown): back uncharged, with the reason
    ``requeue_unstarted`` is given. That is a job its dead worker had claimed
    ahead, or one a live worker (``me``, or in ``alive``) holds only in the data:
    claimed ahead before it stalled, or settled in a file a backup has replaced
    since. Otherwise ``charge`` counts a crash and answers whether the job is now dead.
    """
    requeued: list[str] = []
    buried: list[str] = []
    for orphan in found:
        by = cancelled_by(orphan)
        if by is not None:
            cancel(orphan, f"cancelled by {by}; its worker was gone before it could stop it")
            continue
        ran = started(orphan.owner)
        if ran is not None and (orphan.id, orphan.attempt) not in ran:
            requeue_unstarted(orphan, unstarted_reason(orphan.owner, me, alive))
            requeued.append(orphan.id)
            continue
        message = (f"worker {orphan.owner} died while attempt {orphan.attempt} was running"
                   if orphan.owner != me else
                   f"lease of attempt {orphan.attempt} expired: its outcome could not be "
                   "written")
        if charge(orphan, message):
            buried.append(orphan.id)
        else:
            requeued.append(orphan.id)
    return Recovery(requeued, buried)
