"""``python -m tui`` stopped by a signal from outside its terminal (``kill -INT``, a
supervisor): a real process on a real pseudo-terminal, a real signal."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_for

#: What the terminal shows once the dashboard is up (its first tab).
DRAWN = b"1 Overview"
#: Textual leaves the alternate screen last thing when it restores the terminal.
LEFT_ALTERNATE_SCREEN = b"\x1b[?1049l"


def _waits_in_pipe_read(pid: int) -> bool:
    """The process sleeps in the kernel reading a pipe ("pipe_read", "anon_pipe_read")."""
    return Path(f"/proc/{pid}/wchan").read_text().endswith("pipe_read")


class Dashboard:
    """``python -m tui`` on a pseudo-terminal of its own, as a user's shell runs it."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.modes = termios.tcgetattr(slave)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
        # COLUMNS and LINES win over the terminal's size, and tests run before this one in
        # the same process may have left them set: give the terminal's own.
        env.update({"PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLUMNS": "120",
                    "LINES": "40"})
        self.proc = subprocess.Popen([sys.executable, "-m", "tui", *args], cwd=cwd, env=env,
                                     stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        self.slave = slave
        self.output = b""

    def read(self) -> bytes:
        """What it wrote so far (never waits)."""
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError as exc:  # EIO: the process is gone and the terminal closed
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            self.output += chunk
        return self.output

    def wait(self, timeout: float = 30.0) -> int:
        wait_for(lambda: (self.read(), self.proc.poll())[1] is not None, timeout=timeout,
                 message="the dashboard to exit")
        self.read()
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def dashboard(tmp_path):
    started: list[Dashboard] = []
    # A shell starts a command in the foreground with SIGINT at its default, which the
    # dashboard inherits. A suite started in the background (`cmd &`, nohup) ignores it,
    # and a process started ignoring SIGINT keeps ignoring it, as it should: the
    # dashboards here are started as from a terminal's shell, whatever ran the tests.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def start(*args: str) -> Dashboard:
        started.append(Dashboard(*args, cwd=tmp_path))
        return started[-1]

    yield start
    for one in started:
        one.close()
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_it_runs_exits_quietly_with_the_signal_s_status(
        seeded, dashboard, signum, code):
    # Given the dashboard drawn on its terminal
    shown = dashboard("--db", str(seeded.path))
    wait_for(lambda: DRAWN in shown.read(), timeout=60, message="the dashboard drawn")
    # When something outside the terminal sends it the signal
    shown.proc.send_signal(signum)
    # Then it exits with the conventional status, no traceback, the terminal restored
    assert shown.wait() == code, shown.output.decode(errors="replace")
    assert b"Traceback" not in shown.output and b"KeyboardInterrupt" not in shown.output
    assert LEFT_ALTERNATE_SCREEN in shown.output[shown.output.rindex(DRAWN):]
    assert termios.tcgetattr(shown.slave) == shown.modes


def test_sigint_while_it_starts_exits_quietly_with_130(seeded, dashboard, tmp_path):
    # Given a dashboard still starting: reading its settings from a pipe nobody wrote yet
    settings = tmp_path / "settings-pipe.toml"
    os.mkfifo(settings)
    starting = dashboard("--db", str(seeded.path), "--settings", str(settings))

    def writer() -> int | None:
        try:  # fails until the dashboard opens the pipe to read it
            return os.open(settings, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            return None

    pipe = wait_for(writer, timeout=60, message="the dashboard opening its settings")
    try:
        # Python runs its handler when a signal interrupts a system call, or between two
        # steps of Python code; one landing between the open and the read of the pipe is
        # only seen once the read returns. So the signal is sent once the read waits.
        wait_for(lambda: _waits_in_pipe_read(starting.proc.pid), timeout=60,
                 message="the dashboard waiting to read its settings")
        # When it gets SIGINT before it could draw anything
        starting.proc.send_signal(signal.SIGINT)
        # Then it exits quietly with 130, the terminal untouched
        assert starting.wait() == 130, starting.output.decode(errors="replace")
    finally:
        os.close(pipe)
    assert b"Traceback" not in starting.output and b"KeyboardInterrupt" not in starting.output
    assert DRAWN not in starting.output
    assert termios.tcgetattr(starting.slave) == starting.modes
