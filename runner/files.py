"""Files the runner creates get their permissions from ``[runner] file_mode``.

Job arguments, results, tracebacks and captured logs live in ``jobs.db`` and
``worker.log``, so they are created private (0600 by default) whatever the
umask. SQLite gives ``-wal`` and ``-shm`` the permissions of the database file,
so creating the database file first is enough for all three.
"""

from __future__ import annotations

import os
import stat
import tempfile
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


def creation_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a file cannot be created at ``path`` (with the directories it lacks), or None.

    Found without creating it: the nearest directory that exists must be one (not a
    file), and a directory made there and removed at once must be allowed. That last
    try is what tells, where permission bits do not (root, read-only mounts, ``/sys``).
    """
    here = Path(os.path.abspath(path)).parent
    while not here.exists():
        if here.is_symlink():  # a link to nowhere: nothing can be made under it
            return f"{here} is a link to a path that does not exist"
        here = here.parent
    if not here.is_dir():
        return f"{here} is a file, not a directory"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".runner-check-", dir=here))
    except OSError as exc:
        return f"cannot create files under {here} ({exc.strerror})"
    return None


def write_refusal(path: str | os.PathLike[str]) -> str:
    """Why this user may not write the SQLite file at ``path``: the file or its ``-wal`` /
    ``-shm`` companion another user owns without giving write access, its directory, or
    a read-only mount (for a message; SQLite itself says only "readonly database")."""
    path = os.path.abspath(path)
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            st = os.stat(name)
        except OSError:
            continue
        if not os.access(name, os.W_OK):
            return (f"{'the file' if name == path else name} belongs to uid {st.st_uid} "
                    f"with mode {stat.S_IMODE(st.st_mode):04o}")
    directory = os.path.dirname(path)
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"its directory {directory} is not writable"
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "its file system is mounted read-only"
    except OSError:
        pass
    return "SQLite opened it read-only"


def is_empty_database(path: str | os.PathLike[str]) -> bool:
    """True for a SQLite file with nothing in it yet: 0 bytes, and no ``-wal`` holding
    pages that were never copied into it. SQLite takes such a file as a new database;
    so does the runner (a deploy step may ``touch`` it before any worker ran)."""
    try:
        if os.stat(path).st_size:
            return False
    except OSError:
        return False
    try:
        return os.stat(f"{os.fspath(path)}-wal").st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False
