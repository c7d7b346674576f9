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
the ``os.stat`` before every write did. Where no watch can be had (another
system, or the per-user limit of inotify instances reached) :meth:`FileWatch.events`
says so and every write reads the identity as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import sys
import weakref

logger = logging.getLogger(__name__)

_IN_ATTRIB = 0x4  # metadata, the link count among it: deleted, or replaced by a rename
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_MASK = _IN_ATTRIB | _IN_DELETE_SELF | _IN_MOVE_SELF
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.inotify_init1  # noqa: B018 - present on every Linux libc since 2.9
        libc.inotify_add_watch  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class FileWatch:
    """A count of the times the watched file may have changed identity.

    Not thread-safe: the caller serializes :meth:`events` and :meth:`arm` (the
    database's write lock).
    """

    def __init__(self, path: str) -> None:
        self._path = os.fsencode(path)
        self._fd = -1
        self._poll: select.poll | None = None
        self._count = 0
        if _LIBC is None:
            return
        fd = _LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            logger.debug("no inotify instance (%s): every write reads the file's identity",
                         os.strerror(ctypes.get_errno()))
            return
        self._fd = fd
        weakref.finalize(self, os.close, fd)
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    def events(self) -> int | None:
        """How many times something happened to the file so far (a number that grows
        with each); None when the file is not watched: then look each time."""
        poll = self._poll
        if poll is None:
            return None
        if poll.poll(0):
            try:
                while os.read(self._fd, 4096):
                    pass
            except BlockingIOError:
                pass  # read them all
            self._count += 1
        return self._count

    def arm(self) -> bool:
        """Watch the file now at the path (after it was opened, or opened again); False
        when it cannot be watched (every write then looks at the path)."""
        if self._poll is None:
            return False
        if _LIBC is None or _LIBC.inotify_add_watch(self._fd, self._path, _MASK) < 0:
            logger.debug("cannot watch %s (%s): every write reads its identity",
                         self._path, os.strerror(ctypes.get_errno()))
            self._poll = None
            return False
        return True
