"""WAL checkpoints of a worker, off its claim path.

By default SQLite checkpoints in the commit that takes the WAL past 1,000
pages: that commit copies the pages into the database file and syncs it before
it returns. In a worker the commit is a claim's or an outcome's, made under
the process's write lock, so every thread waiting for a job waits for the copy
too; the more pages a claim writes (queue weights drain the queues' rows from
as many places of the table as there are queues), the more often.

A worker turns that off on its own connections (the producers' keep it) and
checkpoints from this thread instead, on a connection of its own, while claims
go on: SQLite copies what was committed before the checkpoint began, never
waiting on a writer (``PASSIVE``). Only once the WAL holds ``restart_frames``
or more does a pass also copy the last frames under the write lock (nothing of
this process commits meanwhile, so the copy ends at the WAL's end and the next
commit writes the WAL from its start again): the WAL stays about the size the
default keeps it.
"""

from __future__ import annotations

import logging
import threading

from runner.pass_failure import log_pass_failure
from runner.store.sqlite.db import Database

logger = logging.getLogger(__name__)

#: Seconds between looks for new commits.
INTERVAL = 0.05
#: WAL frames past which a pass copies the WAL to its end (SQLite's default autocheckpoint).
RESTART_FRAMES = 1000


class Checkpointer:
    """A thread that checkpoints ``db``'s WAL after this process's commits."""

    def __init__(self, db: Database, *, interval: float = INTERVAL,
                 restart_frames: int = RESTART_FRAMES) -> None:
        self.db = db
        self.interval = interval
        self.restart_frames = restart_frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        """Turn off the commits' own checkpoints and start checkpointing here."""
        self.db.deferred_checkpoints = True
        self._thread = threading.Thread(target=self._run, name="runner-checkpointer",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; commits checkpoint by themselves again."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None
        self.db.deferred_checkpoints = False

    def _run(self) -> None:
        seen = self.db.commits
        try:
            while not self._stop.wait(self.interval):
                if self.db.commits == seen:
                    continue
                seen = self.db.commits
                try:
                    self.checkpoint()
                except Exception:
                    if not self._failing:  # once per spell of failures, not every pass
                        log_pass_failure(logger, "WAL checkpoint failed; trying again")
                    self._failing = True
                else:
                    self._failing = False
        finally:
            self.db.close()

    def checkpoint(self) -> tuple[int, int]:
        """One pass: (frames in the WAL, frames copied). Copies what is committed without
        waiting on writers; past ``restart_frames``, the rest under the write lock."""
        self.db.refresh()  # a file restored from a backup is checkpointed, not the old one
        busy, log, done = self.db.query("PRAGMA wal_checkpoint(PASSIVE)")[0]
        # Copied to the end as it stood (no reader holds old frames), but commits made
        # meanwhile are not: the WAL starts over only once a checkpoint ends at its end.
        if log >= self.restart_frames and done == log and not busy:
            with self.db.exclusive():
                busy, log, done = self.db.query("PRAGMA wal_checkpoint(PASSIVE)")[0]
        return log, done
