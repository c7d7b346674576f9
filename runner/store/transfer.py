"""Copying a SQLite jobs file to PostgreSQL or Redis (``migrate-to``): the checks and the
order every backend's copy shares.

The file is read through :class:`runner.store.sqlite.export.FileExport`; each
backend writes through the ``transfer`` module of its folder, which offers
``copied_from(store)`` (the file a store holds a copy of), ``record_source(store,
source)``, ``read_before_pruning(store)`` (the rowids of jobs and events in the file
up to which copies read before the target pruned some of what they wrote: not read
again) and ``copy_from_sqlite(export, store)``. A copy refuses, before writing
anything, a file its workers still run on (a job they finish afterwards would run
again on the target) and a target holding jobs that no copy of this file wrote
(two job sets would merge, their ids and unique keys unchecked against each other).
"""

from __future__ import annotations

import importlib
import time

from runner.config import Settings
from runner.errors import (
    ConfigError,
    DatabaseLocked,
    DatabaseUnavailable,
    SourceInUse,
    TargetInUse,
)
from runner.printable import one_line
from runner.store.backend import Store
from runner.store.factory import (
    MODULES,
    PROBE_WAIT,
    SCHEMES,
    backend,
    is_driver_bug,
    open_store,
    redacted,
)
from runner.store.owners import worker_gone
from runner.store.sqlite.export import FileExport

#: Seconds since its last heartbeat within which a worker of the file counts as running.
STALE_AFTER = 60.0
#: Backends a file can be copied to.
TARGETS = ("postgres", "redis")


def target_backend(url: str) -> str:
    """The backend a ``migrate-to`` URL names.

    Raises:
        ConfigError: it is not a PostgreSQL or Redis URL.
    """
    name = SCHEMES.get(url.split("://", 1)[0]) if "://" in url else None
    if name not in TARGETS:
        raise ConfigError(f"migrate-to: {redacted(url)!r} is not a PostgreSQL or Redis URL "
                          "(postgresql://user@host:5432/dbname, redis://host:6379/0, "
                          "unix:///run/redis/redis.sock)")
    return name  # type: ignore[return-value]


def target_url(source: Settings, url: str) -> str:
    """``url`` as the store opens it: a Redis URL without a ``prefix`` gets the settings'
    ``[runner] redis_prefix``, the one the workers will use."""
    if target_backend(url) != "redis" or "prefix=" in url.partition("?")[2]:
        return url
    return f"{url}{'&' if '?' in url else '?'}prefix={source.runner.redis_prefix}"


def _open_target(name: str, url: str) -> Store:
    # A person waits on the copy: a server that does not answer is told within PROBE_WAIT.
    if name == "postgres":
        from runner.store.postgres import open_postgres_store

        return open_postgres_store(url, reach_within=PROBE_WAIT)
    return open_store(url, reach_within=PROBE_WAIT)


def copy_file(source: Settings, url: str, *, history_since: float, force: bool = False,
              now: float | None = None) -> dict[str, tuple[int, int]]:
    """Copy the SQLite jobs file of ``source`` to the PostgreSQL or Redis store at ``url``:
    live jobs, schedules, pending events, pauses, counters and what finished, fired or
    was logged since ``history_since``. Safe to run again (what the target holds is kept
    as it is).

    Returns:
        part -> (rows read from the file, rows new in the target).

    Raises:
        ConfigError: ``url`` is not a PostgreSQL or Redis URL.
        DatabaseUnavailable: there is no file, or the server cannot be reached.
        SourceInUse: workers still run on the file (and not ``force``).
        TargetInUse: the target holds jobs no copy of this file wrote.
    """
    name = target_backend(url)
    if not source.database_path.exists():
        raise DatabaseUnavailable(f"{source.database_path}: no jobs database here to copy from")
    file = open_store(source.database_path, readonly=True)
    if file.intake_waiting():
        # Jobs a single enqueue left in SQLite's intake (runner.store.sqlite.transitions.
        # intake) go into the jobs table first, where the copy reads them.
        writer = open_store(source.database_path)
        try:
            writer.absorb_intake()
        finally:
            writer.close()
        file.refresh()
        if file.intake_waiting():
            raise DatabaseLocked(
                f"{source.database_path}: jobs just enqueued could not be moved into the jobs "
                "table (another process holds the write lock); nothing was copied, run this "
                "again")
    at = time.time() if now is None else now
    # A worker killed a moment ago still has a fresh heartbeat; one of this host whose
    # process is gone finishes nothing after the copy, so it does not count.
    running = sum(not worker_gone(w, source.runner.node_name or None)
                  for w in file.live_worker_ids(at, STALE_AFTER))
    if running and not force:
        raise SourceInUse(
            f"{file.location}: {running} worker(s) still run on this file; stop them first "
            "(a job they finish after the copy would run again on the target), or pass --force")
    transfer = importlib.import_module(f"{MODULES[name]}.transfer")
    errors = backend(name).errors
    try:
        target = _open_target(name, url)
        try:
            identity = str(source.database_path.resolve())
            if transfer.copied_from(target) != identity and target.count_jobs():
                raise TargetInUse(
                    f"{redacted(url)} holds jobs of its own (not copied from {identity}); "
                    "copy to an empty database, or empty this one first")
            transfer.record_source(target, identity)
            jobs_after, events_after = transfer.read_before_pruning(target)
            export = FileExport(file.db, history_since=history_since,  # type: ignore[attr-defined]
                                crash_limit=source.worker.crash_limit, now=at,
                                jobs_after=jobs_after, events_after=events_after)
            report = transfer.copy_from_sqlite(export, target)
        finally:
            target.close()
    except errors as exc:
        # The server's error, named by the target's URL (the CLI would name the file)
        if is_driver_bug(exc):
            raise
        raise DatabaseUnavailable(f"{redacted(url)}: {one_line(exc).rstrip('.')}; is the "
                                  "server up and the URL right? (what was copied stays, and "
                                  "running this again goes on from it)") from exc
    return {part: (read, report.written.get(part, 0)) for part, read in report.read.items()}
