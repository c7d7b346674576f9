"""Which attempts a worker process has really started, kept where its death cannot erase it.

A worker claims jobs ahead of its idle threads (``prefetch``); those rows are
``executing`` under its lease before any thread has touched them. When the
process dies, only the attempts that had started may be charged a crash, and
the database cannot say which (writing every start there would cost a commit
per job). So just before an attempt runs, its job id and attempt number go
into a fixed slot of a small file beside the database, and the slot is blanked
once the attempt's outcome is committed: one ``pwrite`` each, no fsync. The
kernel keeps the write after a ``kill -9`` or an OOM kill; the orphan recovery
of the next worker on the host reads the file. Without a file (a worker of
another host, or of an older version) every attempt the dead worker held is
charged. A power loss may take the file's contents with it: the jobs then go
back uncharged, as the outage and not they stopped the worker.

Outcomes a stopping worker could not write (completions, failures) are kept
beside the file (see :mod:`runner.store.sqlite.kept_outcomes`), for the recovery
to commit instead of charging a crash.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from runner.store.job_rows import Ack, Failed
from runner.store.sqlite.kept_outcomes import SUFFIX, keep, kept_path, read_kept

SLOT_BYTES = 256
_BLANK = b" " * (SLOT_BYTES - 1) + b"\n"


def running_dir(database: Path) -> Path:
    """The directory of the running files of one database."""
    return database.parent / f".{database.name}.running"


def running_path(database: Path, owner: str) -> Path:
    """The running file of worker ``owner`` (``host:pid:started_ms``)."""
    return running_dir(database) / owner.replace("/", "_")


class RunningFile:
    """One worker process's started attempts, one fixed slot each until settled."""

    def __init__(self, path: Path, *, keeps_outcomes: bool = False) -> None:
        self.path = path
        # Only a backend whose recovery reads the kept outcomes may promise to keep them.
        self._keeps_outcomes = keeps_outcomes
        path.parent.mkdir(mode=0o700, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._lock = threading.Lock()
        self._slots: dict[str, int] = {}
        self._free: list[int] = []
        self._next = 0

    def started(self, job_id: str, attempt: int) -> None:
        """Record, before it runs, that ``attempt`` of ``job_id`` starts."""
        with self._lock:
            slot = self._slots.get(job_id)
            if slot is None:
                if self._free:
                    slot = self._free.pop()
                else:
                    slot, self._next = self._next, self._next + 1
                self._slots[job_id] = slot
        line = f"{job_id} {attempt}".encode()[:SLOT_BYTES - 1]
        os.pwrite(self._fd, line.ljust(SLOT_BYTES - 1) + b"\n", slot * SLOT_BYTES)

    def settled(self, job_ids: Iterable[str]) -> None:
        """The outcomes of these jobs are committed: their slots are free again."""
        with self._lock:
            for job_id in job_ids:
                slot = self._slots.pop(job_id, None)
                if slot is not None:
                    os.pwrite(self._fd, _BLANK, slot * SLOT_BYTES)
                    self._free.append(slot)

    def keep_outcomes(self, acks: Sequence[Ack], failures: Sequence[Failed] = ()) -> bool:
        """Keep outcomes that could not be written, fsynced, for the recovery to write;
        False when this backend's recovery would not read them."""
        if not self._keeps_outcomes or not (acks or failures):
            return False
        keep(self.path, acks, failures)
        return True

    def close(self, *, remove: bool = True) -> None:
        """Stop recording; a clean stop removes the file."""
        os.close(self._fd)
        if remove:
            self.path.unlink(missing_ok=True)


def read_started(database: Path, owner: str) -> set[tuple[str, int]] | None:
    """The attempts ``owner`` had started and not finished; None when it left no file."""
    try:
        text = running_path(database, owner).read_bytes().decode(errors="replace")
    except OSError:
        return None
    started = set()
    for line in text.splitlines():
        job_id, _, attempt = line.strip().rpartition(" ")
        if job_id and attempt.isdigit():
            started.add((job_id, int(attempt)))
    return started


def read_kept_outcomes(database: Path, owner: str) -> list[Ack | Failed]:
    """The outcomes ``owner`` kept at its stop, unwritten (or none)."""
    return read_kept(kept_path(running_path(database, owner)))


def is_kept_outcomes(name: str) -> bool:
    """Whether a file of :func:`running_dir` holds kept outcomes, not started attempts."""
    return name.endswith(SUFFIX)


def forget(database: Path, owner: str) -> None:
    """Remove the files of a worker whose jobs were recovered."""
    path = running_path(database, owner)
    path.unlink(missing_ok=True)
    kept_path(path).unlink(missing_ok=True)
