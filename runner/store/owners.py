"""Worker ids: ``host:pid:started_ms``, made, read back and checked for a live process."""

from __future__ import annotations

import os
import socket
import time


def make_worker_id(now: float | None = None, *, node: str = "") -> str:
    """A new worker id for this process on ``node`` (default: the machine's host name)."""
    started = time.time() if now is None else now
    return f"{node or socket.gethostname()}:{os.getpid()}:{int(started * 1000)}"


def node_of(me: str | None) -> str:
    """The node (host) name of worker id ``me``, or this machine's host name."""
    host = parse_worker_id(me)[0] if me else ""
    return host or socket.gethostname()


def parse_worker_id(owner: str) -> tuple[str, int | None]:
    """(host, pid) of a worker id; pid None when it cannot be read."""
    host, _, rest = owner.rpartition(":")
    host, _, pid = host.rpartition(":")
    return host, int(pid) if pid.isdigit() else None


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_gone(owner: str, host: str | None = None) -> bool:
    """True when ``owner`` is a worker of this host whose process no longer exists."""
    owner_host, pid = parse_worker_id(owner)
    here = socket.gethostname() if host is None else host
    return owner_host == here and pid is not None and not pid_alive(pid)
