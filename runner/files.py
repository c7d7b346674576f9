"""Files the runner creates get their permissions from ``[runner] file_mode``.

Job arguments, results, tracebacks and captured logs live in ``jobs.db`` and
``worker.log``, so they are created private (0600 by default) whatever the
umask. SQLite gives ``-wal`` and ``-shm`` the permissions of the database file,
so creating the database file first is enough for all three.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_FILE_MODE = 0o600


def create_private(path: str | os.PathLike[str], mode: int = DEFAULT_FILE_MODE) -> bool:
    """Create ``path`` empty with exactly ``mode`` unless it exists; True if it was created.

    A file that already exists keeps its permissions: an operator may have
    chosen them.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits the setting asks for
    finally:
        os.close(fd)
    return True


def mode_of(path: str | os.PathLike[str]) -> int | None:
    """The permission bits of a file, or None when it does not exist."""
    try:
        return Path(path).stat().st_mode & 0o777
    except OSError:
        return None
