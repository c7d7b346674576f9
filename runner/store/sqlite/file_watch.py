"""Whether the jobs file may have been deleted or replaced since a write last looked.

A restore swaps the file under open connections, and a connection left on the
old one would write where no worker reads (see :meth:`Database._check_file`).
Reading the path's identity (``os.stat``) before every write cost a single
enqueue about a twentieth of its time, most of it in building the stat result.

On Linux the kernel says when to look instead: an inotify watch on the file's
inode reports a change of its link count (the file deleted, or another renamed
over it) or a move of the file itself, as part of the call that made it. A
write polls the watch (no path lookup, nothing built when nothing happened) and
reads the identity only once something did, so it notices a swap as surely as
the ``os.stat`` before every write did. A process has one inotify instance for
all its files (the instances are few per user, and shared by every program of
the user); a forked child makes its own. Where no watch can be had (another
system, or a per-user limit reached) :meth:`FileWatch.events` says so and every
write reads the identity as before.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import struct
import sys
import threading

logger = logging.getLogger(__name__)

_IN_ATTRIB = 0x4  # metadata, the link count among it: deleted, or replaced by a rename
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_MASK = _IN_ATTRIB | _IN_DELETE_SELF | _IN_MOVE_SELF
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, length of the name after it


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols: libc's among them
        libc.inotify_init1  # noqa: B018 - present on every Linux libc since 2.9
        libc.inotify_add_watch  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class _Instance:
    """The process's inotify instance: events counted by watch descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.poll = select.poll()
        self.poll.register(fd, select.POLLIN)
        self.counts: dict[int, int] = {}
        self.lock = threading.Lock()

    def read(self) -> None:
        """Count the events waiting (caller holds ``lock``)."""
        try:
            while data := os.read(self.fd, 65536):
                at = 0
                while at < len(data):
                    wd, _mask, _cookie, length = _EVENT.unpack_from(data, at)
                    self.counts[wd] = self.counts.get(wd, 0) + 1
                    at += _EVENT.size + length
        except BlockingIOError:
            pass  # read them all


_instance: _Instance | None = None
_made = False
_making = threading.Lock()


def _shared() -> _Instance | None:
    global _instance, _made
    if _made:
        return _instance
    with _making:
        if not _made and _LIBC is not None:
            fd = _LIBC.inotify_init1(os.O_NONBLOCK | _IN_CLOEXEC)
            if fd >= 0:
                _instance = _Instance(fd)
            else:
                logger.debug("no inotify instance (%s): every write reads the file's identity",
                             os.strerror(ctypes.get_errno()))
        _made = True
    return _instance


def _forget_after_fork() -> None:
    # The child shares the parent's queue of events: whichever reads first takes them.
    global _instance, _made, _making
    if _instance is not None:
        os.close(_instance.fd)
    _instance, _made, _making = None, False, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


class FileWatch:
    """A count of the times the watched file may have changed identity.

    The caller serializes the calls on one watch (the database's write lock).
    """

    def __init__(self, path: str) -> None:
        self._path = os.fsencode(path)
        self._instance: _Instance | None = None  # the one armed on (a fork makes another)
        self._wds: list[int] = []
        # A watch refused once (the per-user limit of watches): not asked for again.
        self._refused = False

    def events(self) -> int | None:
        """How many times something happened to the file so far (a number that grows
        with each); None when the file is not watched: then look, and :meth:`arm`."""
        instance = self._instance
        if instance is None or instance is not _instance:
            return None
        with instance.lock:
            if instance.poll.poll(0):
                instance.read()
            counts, wds = instance.counts, self._wds
            return counts.get(wds[0], 0) if len(wds) == 1 else sum(counts.get(w, 0) for w in wds)

    def arm(self) -> None:
        """Watch the file the path names now (after it was opened, or opened again);
        where it cannot be, :meth:`events` stays None."""
        if self._refused:
            return
        instance = _shared()
        if instance is None:
            return
        if instance is not self._instance:
            self._instance, self._wds = instance, []
        wd = _LIBC.inotify_add_watch(instance.fd, self._path, _MASK) if _LIBC else -1
        if wd < 0:
            logger.debug("cannot watch %s (%s): every write reads its identity",
                         os.fsdecode(self._path), os.strerror(ctypes.get_errno()))
            self._instance, self._refused = None, True
            return
        if wd not in self._wds:
            self._wds.append(wd)
