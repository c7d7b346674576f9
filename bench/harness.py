"""Shared pieces of the benchmarks: processes, records, percentiles, printing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def read_record(path: Path) -> list[tuple[int, float]]:
    """(id, time) pairs written by the benchmark tasks.

    A reader may see a line a task is still writing (a write to a file is not
    atomic for readers): the text after the last newline is left for the next read.
    """
    if not path.exists():
        return []
    text = path.read_text()
    rows = []
    for line in text[:text.rfind("\n") + 1].splitlines():
        n, at = line.split()
        rows.append((int(n), float(at)))
    return rows


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def spawn(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=cwd, env=environ, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a running process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def python() -> str:
    return sys.executable


def line(label: str, plain: float, ours: float, unit: str, higher_is_better: bool = True) -> str:
    """One row: both figures and ours/plain as a ratio (or plain/ours for costs)."""
    ratio = ours / plain if higher_is_better else plain / ours if ours else float("inf")
    return (f"  {label:<44} plain {plain:>10.1f} {unit:<7} ours {ours:>10.1f} {unit:<7} "
            f"{ratio:5.2f}x")


def jobs_written(db: Path, plain: bool = False) -> int:
    """Jobs in a SQLite file: ours (``runner_job``) or plain huey's queue (``task``).

    A benchmark that only enqueues checks with it that every call wrote its job; ours
    counts the jobs still in the intake too (see runner.store.sqlite.transitions.intake)."""
    if plain:
        return rows_in(db, "task")
    return rows_in(db, "runner_job") + rows_in(db, "runner_intake")


def rows_in(db: Path, table: str) -> int:
    """The rows of ``table`` in a SQLite file."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
